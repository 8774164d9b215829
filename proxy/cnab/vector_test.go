package cnab_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/cnabio/cnab-to-oci/converter"
	"github.com/cnabio/cnab-to-oci/relocation"
	dockerref "github.com/docker/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// The digests research/cnab-formats.md §2.2 gives for Signy's test bundle,
// spelled out here rather than taken from testenv so a changed vector fails.
const (
	vectorIndex      = "sha256:b4936e42304c184bafc9b06dde9ea1f979129e09a021a8f40abc07f736de9268"
	vectorConfig     = "sha256:c88087935c91817e3421c41794ace533f597428d4a9617bf7a6de5bc4200d8da"
	vectorBundleJSON = "sha256:c7e92bd51f059d60b15ad456edf194648997d739f60799b37e08edafd88a81b5"
	vectorInvocation = "sha256:a59a4e74d9cc89e4e75dfb2cc7ea5c108e4236ba6231b53081a9e2506d1197b6"
)

func TestResolveSignyVector(t *testing.T) {
	r, v := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:v1")
	viaRemote, err := cnab.ResolveReference(context.Background(), v.Ref)
	if err != nil {
		t.Fatalf("ResolveReference: %v", err)
	}
	viaHTTP, err := resolveOverHTTP(t, r, "cnab/thin-bundle", "v1")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	for _, b := range []*cnab.Bundle{viaRemote, viaHTTP} {
		if b.Index.Digest != vectorIndex || b.Index.Size != 929 || b.Index.MediaType != ocispec.MediaTypeImageIndex {
			t.Errorf("index %+v, want %s (929 bytes)", b.Index, vectorIndex)
		}
		if b.ConfigManifest.Digest != vectorConfig || b.ConfigManifest.Size != 188 {
			t.Errorf("config manifest %+v, want %s (188 bytes)", b.ConfigManifest, vectorConfig)
		}
		if b.BundleDigest != vectorBundleJSON || len(b.BundleJSON) != 501 || b.BundleMediaType != cnab.MediaTypeCNABConfig {
			t.Errorf("bundle.json %s (%d bytes, %s), want %s (501 bytes)", b.BundleDigest, len(b.BundleJSON), b.BundleMediaType, vectorBundleJSON)
		}
		if string(b.BundleJSON) != string(v.BundleJSON) || string(b.IndexBody) != string(v.Index) {
			t.Errorf("served bytes differ from the vector")
		}
		if len(b.Images) != 1 {
			t.Fatalf("images %+v, want the invocation image only", b.Images)
		}
		inv := b.Images[0]
		if inv.Role != cnab.RoleInvocation || inv.Reference != "cnab/helloworld:0.1.1" || inv.Descriptor.Digest != vectorInvocation ||
			inv.Descriptor.Size != 942 || inv.Descriptor.MediaType != string(types.DockerManifestSchema2) || !inv.Pinned {
			t.Errorf("invocation image %+v", inv)
		}

		// What the publisher signs: bundle.json by default, the index with a flag.
		if s, body := b.Subject(cnab.SubjectBundleJSON); s.Digest != vectorBundleJSON || s.Size != 501 || len(body) != 501 || s.MediaType != cnab.MediaTypeCNABConfig {
			t.Errorf("bundle.json subject %+v", s)
		}
		if s, body := b.Subject(cnab.SubjectIndex); s.Digest != vectorIndex || s.Size != 929 || len(body) != 929 {
			t.Errorf("index subject %+v", s)
		}
		for _, tc := range []struct {
			d    digest.Digest
			n    int64
			kind cnab.SubjectKind
			ok   bool
		}{
			{vectorBundleJSON, 501, cnab.SubjectBundleJSON, true},
			{vectorIndex, 929, cnab.SubjectIndex, true},
			{vectorIndex, 928, 0, false},
			{vectorConfig, 188, 0, false},
		} {
			if k, ok := b.MatchTarget(tc.d, tc.n); ok != tc.ok || (ok && k != tc.kind) {
				t.Errorf("MatchTarget(%s, %d) = %v, %v; want %v, %v", tc.d, tc.n, k, ok, tc.kind, tc.ok)
			}
		}
	}
}

// TestConverterReproducesSignyVector checks the vector against cnab-to-oci's
// own converter, which is what PushBundle builds with: parsing Signy's
// bundle.json and preparing it gives the same three objects byte for byte.
func TestConverterReproducesSignyVector(t *testing.T) {
	v := testenv.SignyVector()
	b, err := bundle.Unmarshal(v.BundleJSON)
	if err != nil {
		t.Fatalf("unmarshal bundle.json: %v", err)
	}
	cfg, err := converter.PrepareForPush(b)
	if err != nil {
		t.Fatalf("PrepareForPush: %v", err)
	}
	if string(cfg.ConfigBlob) != string(v.BundleJSON) {
		t.Errorf("converter re-marshals bundle.json differently:\n%s", cfg.ConfigBlob)
	}
	if string(cfg.Manifest) != string(v.ConfigManifest) || cfg.ManifestDescriptor.Digest != vectorConfig {
		t.Errorf("config manifest %s:\n%s", cfg.ManifestDescriptor.Digest, cfg.Manifest)
	}
	target, err := dockerref.ParseNormalizedNamed("localhost:5000/thin-bundle:v1")
	if err != nil {
		t.Fatal(err)
	}
	ix, err := converter.ConvertBundleToOCIIndex(b, target, cfg.ManifestDescriptor, relocation.ImageRelocationMap{
		"cnab/helloworld:0.1.1": "localhost:5000/thin-bundle@" + vectorInvocation,
	})
	if err != nil {
		t.Fatalf("ConvertBundleToOCIIndex: %v", err)
	}
	got, err := json.Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(v.Index) || digest.FromBytes(got) != vectorIndex {
		t.Errorf("index %s:\n%s", digest.FromBytes(got), got)
	}
}
