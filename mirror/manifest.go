package mirror

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxManifestBytes bounds a manifest read from a source or an export.
const maxManifestBytes = 4 << 20

// children are what a manifest references: child manifests (an index's
// entries) and blobs (config, layers).
type children struct {
	manifests []ocispec.Descriptor
	blobs     []ocispec.Descriptor
}

// references reads what an image manifest, index or cnab-to-oci index
// points at, checking that every digest is well formed.
func references(body []byte) (children, error) {
	var m struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return children{}, fmt.Errorf("parse manifest: %w", err)
	}
	var c children
	c.manifests = m.Manifests
	if m.Config != nil && m.Config.Digest != "" {
		c.blobs = append(c.blobs, *m.Config)
	}
	c.blobs = append(c.blobs, m.Layers...)
	for _, d := range append(append([]ocispec.Descriptor{}, c.manifests...), c.blobs...) {
		if err := d.Digest.Validate(); err != nil {
			return c, fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
		}
		if d.Digest.Algorithm() != digest.SHA256 {
			return c, fmt.Errorf("descriptor digest %s: only sha256 is carried", d.Digest)
		}
		if d.Size < 0 {
			return c, fmt.Errorf("descriptor %s: negative size", d.Digest)
		}
	}
	return c, nil
}

// mediaTypeOf is the body's mediaType field, or fallback.
func mediaTypeOf(body []byte, fallback string) string {
	var m struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(body, &m) == nil && m.MediaType != "" {
		return m.MediaType
	}
	return fallback
}
