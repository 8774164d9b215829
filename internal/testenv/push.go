package testenv

import (
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Ref parses "repo:tag" or "repo@digest" relative to the registry.
func (r *Registry) Ref(t testing.TB, repoAndRef string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoAndRef, name.Insecure)
	if err != nil {
		t.Fatalf("parse reference %q: %v", repoAndRef, err)
	}
	return ref
}

// PushRandomImage pushes a random image with the given number of layers of
// size bytes each and returns it. mt selects the manifest family
// (types.OCIManifestSchema1 or types.DockerManifestSchema2).
func (r *Registry) PushRandomImage(t testing.TB, repoAndTag string, size int64, layers int64, mt types.MediaType) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	r.PushImage(t, repoAndTag, img)
	return img
}

// PushImage writes img to the registry under repoAndTag.
func (r *Registry) PushImage(t testing.TB, repoAndTag string, img v1.Image) {
	t.Helper()
	if err := remote.Write(r.Ref(t, repoAndTag), img); err != nil {
		t.Fatalf("push %s: %v", repoAndTag, err)
	}
}

// PushRandomIndex pushes a multi-platform index of n random images.
func (r *Registry) PushRandomIndex(t testing.TB, repoAndTag string, n int, mt types.MediaType) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	if mt != "" {
		idx = mutate.IndexMediaType(idx, mt)
	}
	archs := []string{"amd64", "arm64", "ppc64le", "s390x", "riscv64"}
	for i := 0; i < n; i++ {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatalf("random image: %v", err)
		}
		if mt == types.OCIImageIndex {
			img = mutate.MediaType(img, types.OCIManifestSchema1)
			img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: archs[i%len(archs)]}},
		})
	}
	if err := remote.WriteIndex(r.Ref(t, repoAndTag), idx); err != nil {
		t.Fatalf("push index %s: %v", repoAndTag, err)
	}
	return idx
}

// ReadLayers reads every layer of img to its end; go-containerregistry
// checks each layer's digest as it is read, so a wrong byte fails the test.
func ReadLayers(t testing.TB, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("layer: %v", err)
		}
		rc.Close()
	}
}
