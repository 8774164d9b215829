package cnab_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

func TestResolveForms(t *testing.T) {
	r := testenv.NewRegistry(t)
	for _, tc := range []struct {
		form           testenv.BundleForm
		indexType      string
		configManifest string
		bundleType     string
	}{
		{testenv.BundleOCI, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, cnab.MediaTypeCNABConfig},
		{testenv.BundleOCIImageConfig, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig},
		{testenv.BundleDockerConfig, ocispec.MediaTypeImageIndex, string(types.DockerManifestSchema2), string(types.DockerConfigJSON)},
		{testenv.BundleDockerManifestList, string(types.DockerManifestList), ocispec.MediaTypeImageManifest, cnab.MediaTypeCNABConfig},
	} {
		t.Run(tc.form.String(), func(t *testing.T) {
			p := r.PushBundle(t, "acme/sample:"+tc.form.String(), testenv.SampleBundle(), tc.form)
			if p.IndexMediaType != tc.indexType || p.ConfigManifestMediaType != tc.configManifest || p.BundleMediaType != tc.bundleType {
				t.Fatalf("pushed %s / %s / %s, want %s / %s / %s", p.IndexMediaType, p.ConfigManifestMediaType, p.BundleMediaType,
					tc.indexType, tc.configManifest, tc.bundleType)
			}
			// Through go-containerregistry (the publisher's path) and over
			// raw HTTP (the proxy's), with the same result.
			viaRemote, err := cnab.ResolveReference(context.Background(), p.Ref)
			if err != nil {
				t.Fatalf("ResolveReference: %v", err)
			}
			viaHTTP, err := resolveOverHTTP(t, r, "acme/sample", tc.form.String())
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			for _, b := range []*cnab.Bundle{viaRemote, viaHTTP} {
				checkResolved(t, b, p, tc.bundleType)
			}
		})
	}
}

func checkResolved(t *testing.T, b *cnab.Bundle, p testenv.PushedBundle, bundleType string) {
	t.Helper()
	if b.Index.Digest != p.IndexDigest || b.Index.MediaType != p.IndexMediaType || b.Index.Size != int64(len(p.Index)) {
		t.Errorf("index %+v, want %s %s %d", b.Index, p.IndexDigest, p.IndexMediaType, len(p.Index))
	}
	if string(b.IndexBody) != string(p.Index) {
		t.Errorf("index bytes differ from the pushed ones")
	}
	if b.ConfigManifest.Digest != p.ConfigManifestDigest || b.ConfigManifest.MediaType != p.ConfigManifestMediaType ||
		b.ConfigManifest.Size != int64(len(p.ConfigManifest)) {
		t.Errorf("config manifest %+v, want %s %s", b.ConfigManifest, p.ConfigManifestDigest, p.ConfigManifestMediaType)
	}
	if b.BundleDigest != p.BundleDigest || string(b.BundleJSON) != string(p.BundleJSON) || b.BundleMediaType != bundleType {
		t.Errorf("bundle.json %s (%s), want %s (%s)", b.BundleDigest, b.BundleMediaType, p.BundleDigest, bundleType)
	}
	if len(b.ConfigBlobs) != 1 || b.ConfigBlobs[0].Digest != p.BundleDigest || b.ConfigBlobs[0].Size != int64(len(p.BundleJSON)) {
		t.Errorf("config blobs %+v, want only bundle.json %s", b.ConfigBlobs, p.BundleDigest)
	}
	got := map[string]digest.Digest{}
	for i, img := range b.Images {
		if !img.Pinned {
			t.Errorf("image %q not pinned by bundle.json", img.Name)
		}
		if (i == 0) != (img.Role == cnab.RoleInvocation) {
			t.Errorf("image %d %q has role %s", i, img.Name, img.Role)
		}
		got[img.Name] = img.Descriptor.Digest
	}
	want := map[string]digest.Digest{"invocation": p.Invocation}
	for n, d := range p.Components {
		want[n] = d
	}
	if len(got) != len(want) {
		t.Errorf("images %v, want %v", got, want)
	}
	for n, d := range want {
		if got[n] != d {
			t.Errorf("image %q: %s, want %s", n, got[n], d)
		}
	}
	if b.Images[0].Reference != p.Bundle.InvocationImages[0].Image {
		t.Errorf("invocation reference %q, want %q", b.Images[0].Reference, p.Bundle.InvocationImages[0].Image)
	}
	ms := b.Manifests()
	if len(ms) != 2+len(b.Images) || ms[0].Digest != p.IndexDigest || ms[1].Digest != p.ConfigManifestDigest {
		t.Errorf("Manifests() = %v", ms)
	}
	if !slices.ContainsFunc(ms, func(d ocispec.Descriptor) bool { return d.Digest == p.Components["web"] }) {
		t.Errorf("Manifests() lacks component web")
	}
	if err := b.CheckBinding(cnab.SubjectBundleJSON); err != nil {
		t.Errorf("CheckBinding(bundle.json): %v", err)
	}
}
