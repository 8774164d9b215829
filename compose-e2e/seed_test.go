package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// seeded is what the upstream holds and the TUF repository says about it.
// Each run pushes fresh random content, so digests differ between runs.
type seeded struct {
	// signed is acme/signed:1.0, an OCI image manifest, signed.
	signed string
	// unsigned is acme/unsigned:1.0, a Docker schema 2 image, never signed.
	unsigned string
	// moved is the digest acme/moved:1.0 had when it was signed;
	// movedUpstream is what the upstream tag points to after it was
	// re-pushed (the attack verified tag resolution defeats).
	moved, movedUpstream string
	// multi is acme/multi:1.0, a signed OCI index for linux/amd64 and
	// linux/arm64; multiChild maps an architecture to its image manifest.
	multi      string
	multiChild map[string]string
	// timestampV1 is a copy of the TUF repository's first timestamp.json,
	// for the rollback check after a restart.
	timestampV1 string
}

func (s *stack) tufRepo() string { return filepath.Join(s.work, "tuf", "repo") }
func (s *stack) tufKeys() string { return filepath.Join(s.work, "tuf", "keys") }

// trust runs the publisher CLI: trustproxy trust <args>.
func (s *stack) trust(ctx context.Context, args ...string) (string, error) {
	out, err := s.cmd(ctx, s.bin, append([]string{"trust"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("trustproxy trust %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// initTrust creates the TUF repository and pins its root for trustproxy.
func (s *stack) initTrust(ctx context.Context) error {
	if _, err := s.trust(ctx, "init", "--repo", s.tufRepo(), "--keys", s.tufKeys()); err != nil {
		return err
	}
	meta := filepath.Join(s.tufRepo(), "metadata")
	if err := copyFile(filepath.Join(meta, "1.root.json"), filepath.Join(s.work, "trust", "root.json")); err != nil {
		return fmt.Errorf("pin the root: %w", err)
	}
	s.seed.timestampV1 = filepath.Join(s.work, "timestamp-v1.json")
	return copyFile(filepath.Join(meta, "timestamp.json"), s.seed.timestampV1)
}

// seedAndSign pushes the test content to the upstream, signs what should be
// served with `trustproxy trust add` and `publish`, then re-pushes
// acme/moved:1.0 behind the signature's back.
func (s *stack) seedAndSign(ctx context.Context) error {
	var err error
	if s.seed.signed, err = s.pushImage(ctx, "acme/signed:1.0", types.OCIManifestSchema1); err != nil {
		return err
	}
	if s.seed.unsigned, err = s.pushImage(ctx, "acme/unsigned:1.0", types.DockerManifestSchema2); err != nil {
		return err
	}
	if s.seed.moved, err = s.pushImage(ctx, "acme/moved:1.0", types.DockerManifestSchema2); err != nil {
		return err
	}
	if err := s.pushIndex(ctx, "acme/multi:1.0"); err != nil {
		return err
	}
	// CNAB bundles are pushed, signed and pulled by TestCNABBundle
	// (cnab_test.go); porter and cnab-to-oci cannot be installed here.
	for _, repo := range []string{"acme/signed", "acme/moved", "acme/multi"} {
		if _, err := s.trust(ctx, "add", s.registry+"/"+repo+":1.0", "--insecure",
			"--name", upstreamName+"/"+repo, "--repo", s.tufRepo()); err != nil {
			return err
		}
	}
	if _, err := s.trust(ctx, "publish", "--repo", s.tufRepo(), "--keys", s.tufKeys()); err != nil {
		return err
	}
	s.seed.movedUpstream, err = s.pushImage(ctx, "acme/moved:1.0", types.DockerManifestSchema2)
	return err
}

// pushImage pushes a small random image for linux/<this machine's arch>
// (docker and podman refuse other platforms) and returns its digest.
func (s *stack) pushImage(ctx context.Context, repoTag string, mt types.MediaType) (string, error) {
	img, err := platformImage(runtime.GOARCH, mt)
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(s.registry+"/"+repoTag, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", repoTag, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

func (s *stack) pushIndex(ctx context.Context, repoTag string) error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	s.seed.multiChild = map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := platformImage(arch, types.OCIManifestSchema1)
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		s.seed.multiChild[arch] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := name.ParseReference(s.registry+"/"+repoTag, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %s: %w", repoTag, err)
	}
	d, err := idx.Digest()
	s.seed.multi = d.String()
	return err
}

// platformImage is a two-layer random image for linux/arch whose manifest,
// config and layers all have the media types of family mt (OCI or Docker).
func platformImage(arch string, mt types.MediaType) (v1.Image, error) {
	base, layerType := empty.Image, types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		base = mutate.ConfigMediaType(mutate.MediaType(base, types.OCIManifestSchema1), types.OCIConfigJSON)
		layerType = types.OCILayer
	}
	var adds []mutate.Addendum
	for i := 0; i < 2; i++ {
		l, err := random.Layer(8<<10, layerType)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: layerType})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cf.Config.Cmd = []string{"/nothing-to-run"}
	return mutate.ConfigFile(img, cf)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
