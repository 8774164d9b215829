package cnab_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

func TestIsBundle(t *testing.T) {
	r := testenv.NewRegistry(t)
	r.PushRandomIndex(t, "plain/index:oci", 2, types.OCIImageIndex)
	r.PushRandomIndex(t, "plain/index:docker", 2, types.DockerManifestList)
	r.PushRandomImage(t, "plain/image:1", 128, 1, types.OCIManifestSchema1)
	oci := r.PushBundle(t, "acme/b:oci", testenv.SampleBundle(), testenv.BundleOCI)
	list := r.PushBundle(t, "acme/b:list", testenv.SampleBundle(), testenv.BundleDockerManifestList)

	get := func(repoAndRef string) (string, []byte) {
		d, err := remote.Get(r.Ref(t, repoAndRef))
		if err != nil {
			t.Fatalf("get %s: %v", repoAndRef, err)
		}
		return string(d.MediaType), d.Manifest
	}
	for _, tc := range []struct {
		name, ref   string
		contentType string // overrides the served one when set
		want        bool
	}{
		{name: "plain OCI image index", ref: "plain/index:oci"},
		{name: "plain Docker manifest list", ref: "plain/index:docker"},
		{name: "image manifest", ref: "plain/image:1"},
		{name: "cnab-to-oci OCI index", ref: "acme/b:oci", want: true},
		{name: "cnab-to-oci Docker manifest list", ref: "acme/b:list", want: true},
		{name: "Content-Type with parameters", ref: "acme/b:oci", contentType: ocispec.MediaTypeImageIndex + "; charset=utf-8", want: true},
		{name: "bundle index served as an image manifest", ref: "acme/b:oci", contentType: ocispec.MediaTypeImageManifest},
		{name: "manifest list body served as OCI index", ref: "acme/b:list", contentType: ocispec.MediaTypeImageIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt, body := get(tc.ref)
			if tc.contentType != "" {
				mt = tc.contentType
			}
			if got := cnab.IsBundle(mt, body); got != tc.want {
				t.Errorf("IsBundle(%s, %s) = %v, want %v", mt, tc.ref, got, tc.want)
			}
		})
	}
	if got := cnab.IsBundle("", oci.Index); !got {
		t.Errorf("IsBundle without Content-Type on an OCI bundle index = false")
	}
	if got := cnab.IsBundle("", list.Index); !got {
		t.Errorf("IsBundle without Content-Type on a manifest-list bundle = false")
	}

	for _, ref := range []string{"plain/index:oci", "plain/image:1"} {
		if _, err := cnab.ResolveReference(context.Background(), r.Ref(t, ref)); !errors.Is(err, cnab.ErrNotBundle) {
			t.Errorf("ResolveReference(%s) = %v, want ErrNotBundle", ref, err)
		}
	}
}
