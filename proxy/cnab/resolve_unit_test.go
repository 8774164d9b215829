package cnab_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// TestResolveIndexChecks covers what Resolve checks before fetching
// anything: the index bytes against the digest and media type it was
// served under.
func TestResolveIndexChecks(t *testing.T) {
	r := testenv.NewRegistry(t)
	p := r.PushBundle(t, "acme/ix:1", testenv.SampleBundle(), testenv.BundleOCI)
	f := &cnab.RemoteFetcher{Repo: p.Ref.Context()}
	tampered := []byte(strings.Replace(string(p.Index), `"sample"`, `"Sample"`, 1))
	for _, tc := range []struct {
		name  string
		dgst  digest.Digest
		mt    string
		index []byte
		want  string
	}{
		{"digest mismatch", p.IndexDigest, p.IndexMediaType, tampered, "index: content digest"},
		{"bad digest", "sha256:zz", p.IndexMediaType, p.Index, `index: digest "sha256:zz"`},
		{"unavailable algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e", p.IndexMediaType, p.Index, "index: digest"},
		{"served as a manifest list", p.IndexDigest, string(types.DockerManifestList), p.Index, ""},
		{"not an index type", p.IndexDigest, ocispec.MediaTypeImageManifest, p.Index, "neither an OCI index nor a Docker manifest list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := cnab.Resolve(context.Background(), f, tc.dgst, tc.mt, tc.index)
			if tc.want == "" {
				// The OCI index body carries no mediaType field, so the
				// Content-Type alone decides, as with cnab-to-oci's fallback.
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if b.Index.MediaType != tc.mt {
					t.Errorf("index media type %s, want %s", b.Index.MediaType, tc.mt)
				}
				return
			}
			if !errors.Is(err, cnab.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Resolve: %v; want ErrInvalid containing %q", err, tc.want)
			}
		})
	}

	list := r.PushBundle(t, "acme/ix:list", testenv.SampleBundle(), testenv.BundleDockerManifestList)
	_, err := cnab.Resolve(context.Background(), f, list.IndexDigest, ocispec.MediaTypeImageIndex, list.Index)
	if !errors.Is(err, cnab.ErrInvalid) || !strings.Contains(err.Error(), "index body says mediaType") {
		t.Errorf("manifest list served as OCI index: %v", err)
	}
}

// TestUnpinnedImage: a bundle.json without contentDigest resolves (the
// index still names the image), but a signature over bundle.json does not
// bind that image, and CheckBinding says so.
func TestUnpinnedImage(t *testing.T) {
	r := testenv.NewRegistry(t)
	p := r.PushBundle(t, "acme/unpinned:1", testenv.SampleBundle(), testenv.BundleOCI, testenv.EditBundle(func(b *bundle.Bundle) {
		setImage(b, "web", func(i *bundle.BaseImage) { i.Digest = "" })
	}))
	b, err := cnab.ResolveReference(context.Background(), p.Ref)
	if err != nil {
		t.Fatalf("ResolveReference: %v", err)
	}
	for _, img := range b.Images {
		if img.Pinned != (img.Name != "web") {
			t.Errorf("image %q pinned = %v", img.Name, img.Pinned)
		}
	}
	err = b.CheckBinding(cnab.SubjectBundleJSON)
	if !errors.Is(err, cnab.ErrInvalid) || !strings.Contains(err.Error(), `component "web": bundle.json has no contentDigest`) {
		t.Errorf("CheckBinding(bundle.json) = %v", err)
	}
	if err := b.CheckBinding(cnab.SubjectIndex); err != nil {
		t.Errorf("CheckBinding(index) = %v", err)
	}
}
