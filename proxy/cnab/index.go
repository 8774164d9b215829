package cnab

import (
	"bytes"
	_ "crypto/sha256" // digest algorithms go-digest can verify
	_ "crypto/sha512"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bundleIndex is a parsed top-level bundle object with its entries sorted
// by role. Descriptors keep their annotations as served.
type bundleIndex struct {
	mediaType  string
	config     ocispec.Descriptor
	invocation ocispec.Descriptor
	// components in index order; names are unique.
	components []namedDescriptor
}

type namedDescriptor struct {
	name string
	desc ocispec.Descriptor
}

// decodeIndex parses an index or manifest list and settles its media type:
// the Content-Type the registry served, else the body's mediaType field,
// else an OCI index (cnab-to-oci's OCI index carries no mediaType field).
func decodeIndex(contentType string, body []byte) (string, ocispec.Index, error) {
	var ix ocispec.Index
	if err := json.Unmarshal(body, &ix); err != nil {
		return "", ix, fmt.Errorf("parse index: %w", err)
	}
	mt := baseMediaType(contentType)
	switch {
	case mt == "" && ix.MediaType != "":
		mt = ix.MediaType
	case mt == "":
		mt = ocispec.MediaTypeImageIndex
	case ix.MediaType != "" && ix.MediaType != mt:
		return "", ix, fmt.Errorf("index body says mediaType %q but was served as %q", ix.MediaType, mt)
	}
	if !isIndexType(mt) {
		return "", ix, fmt.Errorf("media type %q is neither an OCI index nor a Docker manifest list", mt)
	}
	return mt, ix, nil
}

// hasConfigEntry is IsBundle's test: any entry typed as a bundle config.
func hasConfigEntry(ix ocispec.Index) bool {
	for _, d := range ix.Manifests {
		if d.Annotations[AnnotationManifestType] == ManifestTypeConfig {
			return true
		}
	}
	return false
}

// IsBundle reports whether an index or manifest-list body, served with the
// given Content-Type, is a cnab-to-oci bundle: it has an entry annotated
// io.cnab.manifest.type=config. It does not validate the bundle (Resolve
// does), so a malformed bundle is still recognised and then refused rather
// than served as a plain index.
func IsBundle(mediaType string, body []byte) bool {
	if mt := baseMediaType(mediaType); mt != "" && !isIndexType(mt) {
		return false
	}
	// Cheap reject for the common case, plain multi-arch image indexes.
	if !bytes.Contains(body, []byte(AnnotationManifestType)) {
		return false
	}
	_, ix, err := decodeIndex(mediaType, body)
	return err == nil && hasConfigEntry(ix)
}

// classifyIndex checks the index shape cnab-to-oci writes and sorts the
// entries by role. Every entry must carry a known io.cnab.manifest.type:
// anything unannotated would be content the bundle does not account for.
func classifyIndex(mediaType string, ix ocispec.Index) (*bundleIndex, error) {
	if ix.SchemaVersion != 2 {
		return nil, invalidf("index schemaVersion %d, want 2", ix.SchemaVersion)
	}
	bi := &bundleIndex{mediaType: mediaType}
	var haveConfig, haveInvocation bool
	names := map[string]bool{}
	for i, d := range ix.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, invalidf("index entry %d: digest %q: %v", i, d.Digest, err)
		}
		if d.Size <= 0 {
			return nil, invalidf("index entry %d (%s): size %d", i, d.Digest, d.Size)
		}
		typ, ok := d.Annotations[AnnotationManifestType]
		if !ok {
			return nil, invalidf("index entry %d (%s): extra unannotated entry: no %s annotation", i, d.Digest, AnnotationManifestType)
		}
		switch typ {
		case ManifestTypeConfig:
			if haveConfig {
				return nil, invalidf("two config entries in the index (%s and %s)", bi.config.Digest, d.Digest)
			}
			if !isConfigManifestType(d.MediaType) {
				return nil, invalidf("config entry %s: media type %q is not an image manifest", d.Digest, d.MediaType)
			}
			bi.config, haveConfig = d, true
		case ManifestTypeInvocation:
			// cnab-to-oci supports exactly one invocation image and maps
			// every invocation entry to invocationImages[0]; a second entry
			// would be an image nobody can name.
			if haveInvocation {
				return nil, invalidf("two invocation entries in the index (%s and %s)", bi.invocation.Digest, d.Digest)
			}
			if !isImageManifestType(d.MediaType) {
				return nil, invalidf("invocation image entry %s: unsupported media type %q", d.Digest, d.MediaType)
			}
			bi.invocation, haveInvocation = d, true
		case ManifestTypeComponent:
			name := d.Annotations[AnnotationComponentName]
			if name == "" {
				return nil, invalidf("component entry %s: no %s annotation", d.Digest, AnnotationComponentName)
			}
			if names[name] {
				return nil, invalidf("component %q: two index entries", name)
			}
			names[name] = true
			if !isImageManifestType(d.MediaType) {
				return nil, invalidf("component %q: entry %s has unsupported media type %q", name, d.Digest, d.MediaType)
			}
			bi.components = append(bi.components, namedDescriptor{name: name, desc: d})
		default:
			return nil, invalidf("index entry %d (%s): unknown %s %q", i, d.Digest, AnnotationManifestType, typ)
		}
	}
	if !haveConfig {
		return nil, invalidf("no config entry in the index")
	}
	if !haveInvocation {
		return nil, invalidf("no invocation image entry in the index")
	}
	return bi, nil
}

// verifyBytes checks served bytes against the digest and size that named them.
func verifyBytes(what string, want digest.Digest, wantSize int64, body []byte) error {
	if err := want.Validate(); err != nil {
		return invalidf("%s: digest %q: %v", what, want, err)
	}
	if wantSize >= 0 && int64(len(body)) != wantSize {
		return invalidf("%s %s: got %d bytes, descriptor says %d", what, want, len(body), wantSize)
	}
	if got := want.Algorithm().FromBytes(body); got != want {
		return invalidf("%s: content digest %s does not match %s", what, got, want)
	}
	return nil
}
