//go:build bench

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/publish"
)

// trustRepo is a real TUF repository made with the publish package: the
// images the scenarios pull, signed the way `trustproxy trust add` signs
// them, plus synthetic filler targets so the index has the size under test.
type trustRepo struct {
	dir, keysDir string
	repo         *publish.Repo
	// filler is the number of synthetic targets (benchgen.Name(upstreamName, 0..filler-1)).
	filler int
	// buildSeconds is how long staging and signing the filler took.
	buildSeconds float64
}

// ociManifestType is the media type of every image the bench signs.
const ociManifestType = ocispec.MediaTypeImageManifest

// newTrustRepo initialises a repository in dir/repo with keys in dir/keys.
func newTrustRepo(ctx context.Context, dir string) (*trustRepo, error) {
	t := &trustRepo{dir: filepath.Join(dir, "repo"), keysDir: filepath.Join(dir, "keys")}
	r, err := publish.Init(ctx, t.dir, t.keysDir, publish.InitOptions{})
	if err != nil {
		return nil, fmt.Errorf("init trust repository: %w", err)
	}
	t.repo = r
	return t, nil
}

// rootPath is the root.json clients pin.
func (t *trustRepo) rootPath() string { return t.repo.RootPath() }

// metadataDir is what trustproxy's trust.<name>.metadata points at.
func (t *trustRepo) metadataDir() string { return filepath.Join(t.dir, "metadata") }

// signImage adds the manifest repoTag points at on the upstream as target
// "<upstream>/<repo>:<tag>", exactly as proxy/trustenv_test.go does.
func (t *trustRepo) signImage(ctx context.Context, upstreamHost, repoTag string) (publish.Descriptor, error) {
	ref, err := publish.ParseReference(upstreamHost+"/"+repoTag, true)
	if err != nil {
		return publish.Descriptor{}, err
	}
	desc, _, err := publish.ResolveImage(ctx, ref)
	if err != nil {
		return publish.Descriptor{}, err
	}
	custom := map[string]any{"mediaType": desc.MediaType}
	if _, err := t.repo.AddTarget("targets", upstreamName+"/"+repoTag, desc.Size, desc.SHA256(), custom); err != nil {
		return publish.Descriptor{}, fmt.Errorf("add target %s: %w", repoTag, err)
	}
	return desc, nil
}

// addFiller stages n synthetic targets in one edit and publishes.
func (t *trustRepo) addFiller(ctx context.Context, n int) error {
	start := time.Now()
	if _, err := t.repo.AddTargets("targets", benchgen.Targets(upstreamName, n)); err != nil {
		return fmt.Errorf("stage filler targets: %w", err)
	}
	if _, err := t.repo.Publish(ctx); err != nil {
		return err
	}
	t.filler = n
	t.buildSeconds = time.Since(start).Seconds()
	return nil
}

// publish signs and publishes what is staged.
func (t *trustRepo) publish(ctx context.Context) error {
	_, err := t.repo.Publish(ctx)
	return err
}

// targetsFileBytes is the size of the newest published targets.json: what
// every client downloads and verifies on a refresh that finds it changed.
func (t *trustRepo) targetsFileBytes() int64 {
	var best int64
	var bestV int64
	entries, _ := os.ReadDir(t.metadataDir())
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d.targets.json", &v); err == nil && v > bestV {
			if fi, err := e.Info(); err == nil {
				bestV, best = v, fi.Size()
			}
		}
	}
	return best
}
