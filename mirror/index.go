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
