package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/refname"
)

// Descriptor is what a registry says a tag points to, checked against the
// manifest bytes it served.
type Descriptor struct {
	// Digest is "sha256:<hex>" of the exact manifest bytes.
	Digest    string
	Size      int64
	MediaType string
}

// SHA256 is the digest's hex part, the TUF target hash.
func (d Descriptor) SHA256() string { return strings.TrimPrefix(d.Digest, "sha256:") }

// ParseReference parses an image reference as docker does ("alpine" is
// index.docker.io/library/alpine:latest). insecure allows plain-HTTP
// registries.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	return r, nil
}

// ResolveImage fetches the manifest ref names and describes its exact bytes:
// sha256 and length computed here, not taken from the registry's headers.
func ResolveImage(ctx context.Context, ref name.Reference, opts ...remote.Option) (Descriptor, []byte, error) {
	desc, err := remote.Get(ref, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return Descriptor{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	// Signed schema 1 manifests are named by the digest of their payload
	// without the signatures, not of the bytes served, so no client could
	// check them against a hash of the bytes.
	switch desc.MediaType {
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return Descriptor{}, nil, fmt.Errorf("resolve %s: %s manifests are not supported: push the image as a schema 2 or OCI manifest", ref, desc.MediaType)
	}
	sum := sha256.Sum256(desc.Manifest)
	d := Descriptor{
		Digest:    "sha256:" + hex.EncodeToString(sum[:]),
		Size:      int64(len(desc.Manifest)),
		MediaType: string(desc.MediaType),
	}
	return d, desc.Manifest, nil
}

// TrustName is the default trust name of ref's repository: <registry
// host>/<repository>, with Docker Hub spelled docker.io
// (docker.io/library/alpine, ghcr.io/acme/app, 127.0.0.1:5000/team/app).
func TrustName(ref name.Reference) string {
	repo := ref.Context()
	host, path := repo.RegistryStr(), repo.RepositoryStr()
	if refname.IsDockerHub(host) {
		host = refname.DockerHub
		if p, err := refname.Repository(host, path); err == nil {
			path = p // go-containerregistry adds library/ only for index.docker.io
		}
	}
	return host + "/" + path
}

// TargetName is the TUF target name of a tagged reference:
// <trust name>:<tag>. trustName "" means TrustName(ref). A reference by
// digest has no tag to name, so it is an error.
func TargetName(ref name.Reference, trustName string) (string, error) {
	tag, ok := ref.(name.Tag)
	if !ok {
		return "", fmt.Errorf("%s names no tag: target names are <trust name>:<tag>", ref)
	}
	if trustName == "" {
		trustName = TrustName(ref)
	}
	n := trustName + ":" + tag.TagStr()
	if err := checkTargetName(n); err != nil {
		return "", err
	}
	return n, nil
}
