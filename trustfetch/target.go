package trustfetch

import (
	"encoding/json"

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
}

// Digest returns the target's content digest, "sha256:<hex>".
func (t Target) Digest() digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, t.SHA256)
}

// MediaType returns the custom "mediaType", or "" if there is none.
func (t Target) MediaType() string {
	var c struct {
		MediaType string `json:"mediaType"`
	}
	if len(t.Custom) == 0 || json.Unmarshal(t.Custom, &c) != nil {
		return ""
	}
	return c.MediaType
}

// InToto returns the custom "in-toto" list of target names (CNAB Security
// spec 301), or nil if there is none or it is not a list of strings.
func (t Target) InToto() []string {
	var c struct {
		InToto []string `json:"in-toto"`
	}
	if len(t.Custom) == 0 || json.Unmarshal(t.Custom, &c) != nil {
		return nil
	}
	return c.InToto
}
