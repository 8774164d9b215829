package trustfetch

import (
	"encoding/json"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Target is one verified TUF target: the name resolved through the
// delegation graph, its length and sha256, and its custom metadata.
type Target struct {
	Name   string
	Length int64
	SHA256 string // lowercase hex
	Custom json.RawMessage
	// Role is the targets role whose entry is authoritative for Name
	// ("targets" for the top-level role).
	Role string

	// decoded is Custom's fields as decoded once per distinct custom
	// value when the index was built, so that a decision does not decode
	// JSON; nil for a Target made elsewhere.
	decoded *custom
	// digest is "sha256:" + SHA256, made once with it by the index.
	digest digest.Digest
}

// Digest returns the target's content digest, "sha256:<hex>".
func (t Target) Digest() digest.Digest {
	if t.digest != "" {
		return t.digest
	}
	return digest.NewDigestFromEncoded(digest.SHA256, t.SHA256)
}

// MediaType returns the custom "mediaType", or "" if there is none.
func (t Target) MediaType() string {
	if t.decoded != nil {
		return t.decoded.mediaType
	}
	return mediaTypeOf(t.Custom)
}

// InToto returns the custom "in-toto" list of target names (CNAB Security
// spec 301), or nil if there is none or it is not a list of strings.
func (t Target) InToto() []string {
	if t.decoded != nil {
		return slices.Clone(t.decoded.inToto)
	}
	return inTotoOf(t.Custom)
}

// HasLayout reports whether the custom metadata has a "layout" member (a
// Signy in-toto payload, see policy/intoto.ParseSignyPayload).
func (t Target) HasLayout() bool {
	if t.decoded != nil {
		return t.decoded.hasLayout
	}
	return newCustom(t.Custom).hasLayout
}

func inTotoOf(custom json.RawMessage) []string {
	var c struct {
		InToto []string `json:"in-toto"`
	}
	if len(custom) == 0 || json.Unmarshal(custom, &c) != nil {
		return nil
	}
	return c.InToto
}
