package testenv

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Descriptor returns the descriptor of the manifest repoAndRef names in the
// registry (a subject for PushArtifact).
func (r *Registry) Descriptor(t testing.TB, repoAndRef string) v1.Descriptor {
	t.Helper()
	d, err := remote.Head(r.Ref(t, repoAndRef))
	if err != nil {
		t.Fatalf("head %s: %v", repoAndRef, err)
	}
	return *d
}

// PushArtifact pushes an OCI artifact (config media type artifactType, one
// layer holding content) whose subject field names subject, by digest into
// repo, as `oras attach` and `cosign attach` do. go-containerregistry
// maintains the referrers tag schema's index for registries without the
// referrers API (distribution). It returns the artifact's digest.
func (r *Registry) PushArtifact(t testing.TB, repo string, subject v1.Descriptor, artifactType, content string) v1.Hash {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.MediaType(artifactType))
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer([]byte(content), "application/vnd.trustproxy.test+json")})
	if err != nil {
		t.Fatal(err)
	}
	return r.PushSubjectImage(t, repo, subject, img)
}

// PushSubjectImage pushes img with its subject field set to subject, by
// digest, and returns its digest.
func (r *Registry) PushSubjectImage(t testing.TB, repo string, subject v1.Descriptor, img v1.Image) v1.Hash {
	t.Helper()
	img = mutate.Subject(img, subject).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.Ref(t, repo+"@"+d.String()), img); err != nil {
		t.Fatalf("push artifact into %s: %v", repo, err)
	}
	return d
}

// PushCosignSignature pushes what `cosign sign` writes by default: an image
// (OCI config, one simple-signing layer with a signature annotation) under
// the tag sha256-<hex>.sig, with no subject field. It returns its digest.
func (r *Registry) PushCosignSignature(t testing.TB, repo string, subject v1.Hash) v1.Hash {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	payload := `{"critical":{"identity":{"docker-reference":"` + repo + `"},"image":{"docker-manifest-digest":"` + subject.String() +
		`"},"type":"cosign container image signature"},"optional":null}`
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer([]byte(payload), "application/vnd.dev.cosign.simplesigning.v1+json"),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQ=="},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.PushImage(t, repo+":sha256-"+subject.Hex+".sig", img)
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
