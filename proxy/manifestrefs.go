package proxy

import (
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// acceptAll is what trustproxy asks upstream for when it fetches by digest:
// every manifest family, so nothing is ever converted on the way.
var acceptAll = strings.Join([]string{ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, string(types.DockerManifestList), string(types.DockerManifestSchema2),
	string(types.DockerManifestSchema1Signed), string(types.DockerManifestSchema1)}, ", ")

const maxManifestBytes = 4 << 20

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// manifestRefs is what a manifest points at: child manifests (index, list)
// and blobs (config, layers).
type manifestRefs struct {
	Manifests []descriptor
	Blobs     []descriptor
}

// parseRefs reads the references of a manifest without re-serialising it.
func parseRefs(mediaType string, body []byte) (manifestRefs, error) {
	var m struct {
		MediaType string       `json:"mediaType"`
		Config    *descriptor  `json:"config"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
		FSLayers  []struct {
			BlobSum digest.Digest `json:"blobSum"`
		} `json:"fsLayers"` // schema 1, for completeness of blob approval
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return manifestRefs{}, fmt.Errorf("parse manifest (%s): %w", mediaType, err)
	}
	var refs manifestRefs
	for _, d := range m.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return refs, fmt.Errorf("manifest entry digest %q: %w", d.Digest, err)
		}
		refs.Manifests = append(refs.Manifests, d)
	}
	if m.Config != nil && m.Config.Digest != "" {
		refs.Blobs = append(refs.Blobs, *m.Config)
	}
	refs.Blobs = append(refs.Blobs, m.Layers...)
	for _, l := range m.FSLayers {
		refs.Blobs = append(refs.Blobs, descriptor{Digest: l.BlobSum, Size: -1})
	}
	for _, b := range refs.Blobs {
		if err := b.Digest.Validate(); err != nil {
			return refs, fmt.Errorf("blob digest %q: %w", b.Digest, err)
		}
	}
	return refs, nil
}

// manifestMediaType picks the media type to serve: the upstream's
// Content-Type when it names one (a cnab-to-oci index has no mediaType in
// its body), else the body's mediaType field.
func manifestMediaType(contentType string, body []byte) string {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt != "" &&
		mt != "application/octet-stream" && mt != "text/plain" && mt != "application/json" {
		return mt
	}
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(body, &m) == nil && m.MediaType != "" {
		return m.MediaType
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt != "" {
		return mt
	}
	return ocispec.MediaTypeImageManifest
}
