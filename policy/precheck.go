package policy

import (
	"strings"
	"sync"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// PrecheckDigest decides, before anything is fetched, whether a manifest
// requested by digest could be vouched for at all. Under enforce the digest
// must be the hash of a target in scope, unless the trust name has targets
// that hash a bundle.json: a CNAB bundle's index is vouched for through its
// bundle.json, which is known only once the index is fetched. A digest
// refused here costs the upstream nothing: no pull quota is spent and the
// upstream's 403-vs-404 is no existence oracle. The denial is logged like
// any other; an allowed precheck is not (CheckManifest logs the decision).
func (e *Engine) PrecheckDigest(s Subject) Decision {
	d, ix, ok := e.begin(s)
	if !ok || ix == nil {
		if !d.Allowed {
			return e.log(s, d)
		}
		return d
	}
	if d.Mode != ModeEnforce {
		return d
	}
	_, reason := e.findTarget(ix, d.Target, s, s.Digest)
	if reason == "" || e.bundleNames.has(ix, d.Target) {
		return d
	}
	return e.log(s, e.fail(d, reason))
}

// bundleNameSet remembers, for the latest index seen, which trust names have
// a target hashing a bundle.json. Built once per index, not per request.
type bundleNameSet struct {
	mu    sync.Mutex
	ix    *trustfetch.Index
	names map[string]bool
}

func (b *bundleNameSet) has(ix *trustfetch.Index, trustName string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ix != ix {
		b.ix, b.names = ix, map[string]bool{}
		ix.EachMediaType(func(n, mediaType string) {
			if i := strings.LastIndexByte(n, ':'); i > 0 && bundleConfigTypes[mediaType] {
				b.names[n[:i]] = true
			}
		})
	}
	return b.names[trustName]
}
