package cnab

import (
	"encoding/json"

	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// configManifest is the part of the bundle config manifest the resolver
// trusts: the bundle.json blob it names.
type configManifest struct {
	config ocispec.Descriptor
	// blobs is every blob the manifest references; after validation that is
	// only the bundle.json blob.
	blobs []ocispec.Descriptor
}

// parseConfigManifest reads the OCI form ({"schemaVersion":2,"config":…,
// "layers":null}) and the Docker schema2 fallback, whose only layer is the
// bundle.json blob again (cnab-formats.md §2.5). Other layers are refused:
// they would be blobs the proxy approves without anything binding them to
// the signed bundle.json.
func parseConfigManifest(descMediaType string, body []byte) (*configManifest, error) {
	if err := checkStrictJSON(body); err != nil {
		return nil, invalidf("config manifest: %v", err)
	}
	var m struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        *ocispec.Descriptor  `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
		Manifests     json.RawMessage      `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, invalidf("config manifest: %v", err)
	}
	if m.SchemaVersion != 2 {
		return nil, invalidf("config manifest: schemaVersion %d, want 2", m.SchemaVersion)
	}
	if m.MediaType != "" && m.MediaType != descMediaType {
		return nil, invalidf("config manifest: body says mediaType %q, index entry says %q", m.MediaType, descMediaType)
	}
	if m.Manifests != nil {
		return nil, invalidf("config manifest: is an index, not an image manifest")
	}
	if m.Config == nil {
		return nil, invalidf("config manifest: no config descriptor")
	}
	c := *m.Config
	if !isBundleConfigType(c.MediaType) {
		return nil, invalidf("config manifest: bundle.json media type %q is none of %s, %s, %s, %s", c.MediaType,
			MediaTypeCNABConfig, MediaTypeCNABBundleConfig, ocispec.MediaTypeImageConfig, string(types.DockerConfigJSON))
	}
	if err := c.Digest.Validate(); err != nil {
		return nil, invalidf("config manifest: bundle.json digest %q: %v", c.Digest, err)
	}
	if c.Size <= 0 {
		return nil, invalidf("config manifest: bundle.json size %d", c.Size)
	}
	if c.Size > MaxBundleJSONSize {
		return nil, invalidf("bundle.json is %d bytes, more than the %d allowed", c.Size, MaxBundleJSONSize)
	}
	if len(c.URLs) > 0 {
		return nil, invalidf("config manifest: bundle.json descriptor has foreign urls")
	}
	switch len(m.Layers) {
	case 0:
	case 1:
		l := m.Layers[0]
		if l.Digest != c.Digest || l.Size != c.Size || len(l.URLs) > 0 {
			return nil, invalidf("config manifest: layer %s (%d bytes) is not the bundle.json blob %s (%d bytes)", l.Digest, l.Size, c.Digest, c.Size)
		}
	default:
		return nil, invalidf("config manifest: %d layers; a bundle config manifest has none or only the bundle.json blob", len(m.Layers))
	}
	return &configManifest{config: c, blobs: []ocispec.Descriptor{c}}, nil
}
