package cache

import "container/list"

// DefaultManifestMemory is the default budget of Options.ManifestMemory.
// Manifests are a few KiB: 64 MiB holds tens of thousands of them.
const DefaultManifestMemory = 64 << 20

// manifestMemory keeps the bodies of verified, committed manifests in
// memory, least recently used first out by bytes, so that a cached manifest
// is answered without opening, reading and re-hashing a storage object on
// every request. It is part of the index and guarded by Cache.mu: a body
// lives exactly as long as its committed entry (eviction, a drop after
// corruption and forgetting a vanished object all go through index.remove).
// It holds bytes by digest only; which digest a tag names is decided by the
// caller against the trust data on every request.
type manifestMemory struct {
	budget int64      // <= 0: keep nothing
	bytes  int64      // sum of len(body) held
	lru    *list.List // of *entry; front: most recently used
}

func newManifestMemory(budget int64) manifestMemory {
	return manifestMemory{budget: budget, lru: list.New()}
}

// get returns e's body if it is held, and marks it used.
func (m *manifestMemory) get(e *entry) ([]byte, bool) {
	if e.memElem == nil {
		return nil, false
	}
	m.lru.MoveToFront(e.memElem)
	return e.body, true
}

// keep holds body (already verified against e's digest) for e, then drops
// the least recently used bodies above the budget.
func (m *manifestMemory) keep(e *entry, body []byte) {
	if e.memElem != nil || int64(len(body)) > m.budget {
		return
	}
	e.body = body
	e.memElem = m.lru.PushFront(e)
	m.bytes += int64(len(body))
	for m.bytes > m.budget {
		m.forget(m.lru.Back().Value.(*entry))
	}
}

// forget releases e's body, if held.
func (m *manifestMemory) forget(e *entry) {
	if e.memElem == nil {
		return
	}
	m.lru.Remove(e.memElem)
	m.bytes -= int64(len(e.body))
	e.body, e.memElem = nil, nil
}
