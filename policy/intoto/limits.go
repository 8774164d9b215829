package intoto

// Bounds on what one verification reads. in-toto metadata is small: a layout
// with a few steps is a few KiB, a link lists the artifacts of one step. The
// limits keep a hostile or broken trust repository from making the proxy parse
// or hash without end; the fetcher should refuse larger targets before
// downloading them.
const (
	// MaxMetadataBytes bounds one layout or link file.
	MaxMetadataBytes = 1 << 20
	// MaxLinks bounds the number of link files given to one verification.
	MaxLinks = 256
	// MaxLayoutKeys bounds the number of pinned layout keys.
	MaxLayoutKeys = 32

	maxSteps       = 64
	maxInspections = 64
	maxKeyBytes    = 64 << 10
	maxParameters  = 64
)
