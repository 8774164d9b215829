package trustfetch

import "time"

// NewIndex builds an Index from targets another verifier has already
// checked (the Notary v1 source in trustfetch/notary), so that policy reads
// every kind of trust source through the same immutable Index. versions and
// expires describe the metadata the targets came from; expiresRole names
// the role that expires first. NewIndex takes ownership of targets.
func NewIndex(targets []Target, versions Versions, expires time.Time, expiresRole string) *Index {
	ix := newIndex(targets)
	ix.versions, ix.expires, ix.expiresRole = versions, expires, expiresRole
	return ix
}

// ExpiresRole names the role whose expiry Expires reports.
func (ix *Index) ExpiresRole() string { return ix.expiresRole }
