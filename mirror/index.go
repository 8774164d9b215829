package mirror

import (
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// File names inside an export.
const (
	indexFile  = "trustproxy-mirror.json"
	layoutFile = "oci-layout"
	ociIndex   = "index.json"
	blobsDir   = "blobs/sha256"
	tufDir     = "tuf"
	formatV1   = "trustproxy-mirror/v1"
)

// Index is trustproxy-mirror.json: what the export holds and what vouched
// for it. It is a table of contents, not evidence: the importer re-derives
// every decision from the TUF metadata and its own policy.
type Index struct {
	Format string `json:"format"`
	// Writer is the trustproxy version that wrote the export.
	Writer  string  `json:"writer"`
	Entries []Entry `json:"entries"`
	// Trust lists the trust repositories whose metadata is included, with
	// the versions the export was verified against.
	Trust map[string]trustfetch.Versions `json:"trust"`
	// Since, for an incremental export (--since), names the export it
	// builds on: the importing side must have imported that one.
	Since *Base `json:"since,omitempty"`
	// Omitted lists the manifests and blobs the trees of Entries reference
	// but this export leaves out, because the base (or its own bases)
	// carried them.
	Omitted []digest.Digest `json:"omitted,omitempty"`
	// Attachments are the signatures, SBOMs and attestations of the
	// entries' manifests (attach.go).
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Base names the export an incremental export builds on.
type Base struct {
	// Digest is the sha256 of the base's trustproxy-mirror.json: what
	// the importing side records for every export it imports.
	Digest digest.Digest `json:"digest"`
	// Path is where the base was read from when this export was written,
	// and References what it held: for people, in messages.
	Path       string   `json:"path"`
	References []string `json:"references"`
}

// Entry is one exported reference.
type Entry struct {
	Reference string        `json:"reference"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	// Target is the TUF target name that vouched, Trust its repository.
	Target string `json:"target"`
	Trust  string `json:"trust"`
	// Bundle is true for a CNAB bundle approved as a unit.
	Bundle bool `json:"bundle,omitempty"`
}
