// Package attachment says what trustproxy serves as an attachment of an
// approved subject (a signature, an SBOM, an attestation) and how the OCI
// referrers tag schema and cosign's tags name them. The proxy and mirror
// import apply the same rules, so an export carries exactly what the live
// proxy would serve.
//
// An attachment is not vouched for by the trust data: the client that uses
// it (cosign, notation, an SBOM scanner) verifies it with its own keys.
// What trustproxy guarantees is narrower, and checked on every use: the
// attachment names an approved subject, its bytes hash to its digest, and
// it is an artifact, not a runnable image, so that pushing a "referrer" to
// the upstream never gets an unsigned image past the proxy.
package attachment

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's manifest and config media types (go-containerregistry's types
// names them too; this package stays free of it).
const (
	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerConfig   = "application/vnd.docker.container.image.v1+json"
)

// Manifest is what an attachment manifest says about itself.
type Manifest struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType,omitempty"`
	Config       ocispec.Descriptor   `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Subject      *ocispec.Descriptor  `json:"subject,omitempty"`
	Annotations  map[string]string    `json:"annotations,omitempty"`
}

// Blobs are the config and layers the manifest references.
func (m *Manifest) Blobs() []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, 1+len(m.Layers))
	if m.Config.Digest != "" {
		out = append(out, m.Config)
	}
	return append(out, m.Layers...)
}

// Type is the artifact type the referrers API reports: artifactType, else
// the config's media type (OCI image spec, "Guidelines for artifact
// usage").
func (m *Manifest) Type() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	return m.Config.MediaType
}

// Descriptor is the entry of the manifest in a referrers index, derived
// from the (verified) manifest itself, never from the upstream's listing.
func (m *Manifest) Descriptor(mediaType string, dg digest.Digest, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: dg, Size: size, ArtifactType: m.Type(), Annotations: m.Annotations}
}

// Parse checks that body (served as mediaType) may be an attachment of
// subject and returns it. With tagged set (a cosign tag, which names the
// subject in the tag instead of a subject field) the subject field is not
// required. It refuses indexes, runnable images and a subject field naming
// anything else.
func Parse(mediaType string, body []byte, subject digest.Digest, tagged bool) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("attachment manifest: %w", err)
	}
	if m.MediaType == "" {
		m.MediaType = mediaType
	}
	if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != dockerManifest {
		return nil, fmt.Errorf("attachment is a %q, not an image manifest (indexes are not served as attachments)", m.MediaType)
	}
	switch {
	case m.Subject != nil && m.Subject.Digest != subject:
		return nil, fmt.Errorf("attachment's subject field names %s, not %s", m.Subject.Digest, subject)
	case m.Subject == nil && !tagged:
		return nil, fmt.Errorf("attachment has no subject field naming %s", subject)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	if m.Runnable() {
		return nil, errors.New("attachment is a runnable image (image config and filesystem layers), not an artifact: it is served only if the trust data vouches for it")
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	for _, d := range m.Blobs() {
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("attachment blob digest %q: %w", d.Digest, err)
		}
		if d.Size < 0 {
			return fmt.Errorf("attachment blob %s: negative size", d.Digest)
		}
	}
	return nil
}

// Runnable reports whether a container runtime could run the manifest: an
// image config and at least one filesystem layer. cosign's signatures
// (image config, simple-signing layers), oras and notation artifacts
// (empty config) are not.
func (m *Manifest) Runnable() bool {
	if m.Config.MediaType != ocispec.MediaTypeImageConfig && m.Config.MediaType != dockerConfig {
		return false
	}
	for _, l := range m.Layers {
		if strings.HasPrefix(l.MediaType, "application/vnd.oci.image.layer.") ||
			strings.HasPrefix(l.MediaType, "application/vnd.docker.image.rootfs.") {
			return true
		}
	}
	return false
}

// SchemaTag is the referrers tag schema's tag for subject
// (sha256:<hex> → sha256-<hex>).
func SchemaTag(subject digest.Digest) string {
	return subject.Algorithm().String() + "-" + subject.Encoded()
}

var tagForm = regexp.MustCompile(`^sha256-([a-f0-9]{64})(\.sig|\.att|\.sbom)?$`)

// ParseTag recognises an attachment tag: the referrers tag schema's
// "sha256-<hex>" (cosign is "") or one of cosign's "sha256-<hex>.sig",
// ".att", ".sbom" (cosign is the suffix without the dot).
func ParseTag(tag string) (subject digest.Digest, cosign string, ok bool) {
	m := tagForm.FindStringSubmatch(tag)
	if m == nil {
		return "", "", false
	}
	return digest.NewDigestFromEncoded(digest.SHA256, m[1]), strings.TrimPrefix(m[2], "."), true
}

// CosignTags are cosign's tags for subject's signatures, attestations and
// SBOMs.
func CosignTags(subject digest.Digest) []string {
	base := SchemaTag(subject)
	return []string{base + ".sig", base + ".att", base + ".sbom"}
}

// Index is a referrers index listing descs (an empty list, never null).
func Index(descs []ocispec.Descriptor) ocispec.Index {
	if descs == nil {
		descs = []ocispec.Descriptor{}
	}
	ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	ix.SchemaVersion = 2
	return ix
}

// Filter keeps the descriptors of artifactType ("" keeps all).
func Filter(descs []ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	if artifactType == "" {
		return descs
	}
	out := []ocispec.Descriptor{}
	for _, d := range descs {
		if d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out
}
