package cache

import "container/list"

// entry is one committed object known to the index.
type entry struct {
	key       key
	size      int64
	mediaType string // manifests only; empty until read or put
	knownType bool   // mediaType holds the stored value
	elem      *list.Element
	// body and memElem: a manifest's verified bytes while manifestMemory
	// holds them.
	body    []byte
	memElem *list.Element
}

// index is the in-memory view of the committed objects in the driver, in
// least-recently-used order. It is guarded by Cache.mu.
type index struct {
	entries map[key]*entry
	lru     *list.List // front: most recently used
	bytes   int64
	mem     manifestMemory
	// recent collects the keys used since the last take, when set (cluster
	// eviction shares them with the other replicas).
	recent map[key]struct{}
}

func newIndex(manifestMemory int64) index {
	return index{entries: make(map[key]*entry), lru: list.New(), mem: newManifestMemory(manifestMemory)}
}

func (ix *index) get(k key) *entry { return ix.entries[k] }

func (ix *index) touch(e *entry) {
	ix.lru.MoveToFront(e.elem)
	ix.noteUse(e.key)
}

func (ix *index) noteUse(k key) {
	if ix.recent != nil {
		ix.recent[k] = struct{}{}
	}
}

// add inserts k as the most recently used object, or returns the existing
// entry untouched in order (added=false).
func (ix *index) add(k key, size int64) (e *entry, added bool) {
	if e := ix.entries[k]; e != nil {
		return e, false
	}
	e = &entry{key: k, size: size}
	ix.noteUse(k)
	e.elem = ix.lru.PushFront(e)
	ix.entries[k] = e
	ix.bytes += size
	return e, true
}

func (ix *index) remove(e *entry) {
	if ix.entries[e.key] != e {
		return
	}
	ix.lru.Remove(e.elem)
	ix.mem.forget(e)
	delete(ix.entries, e.key)
	ix.bytes -= e.size
}
