package proxy

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Bounds of refsMemo: entries, and the references one entry may hold.
const (
	maxRefsMemo        = 4096
	maxRefsMemoPerItem = 1024
)

// refsMemo remembers what a manifest references, by its digest, so a cached
// manifest asked for again is not JSON-decoded on every request (it was the
// largest cost of a by-tag GET answered from memory). What a manifest
// references is a function of its bytes alone, so an entry never goes stale;
// whether those references may be served is still decided per request
// against the trust data (approvals.covering). Bounded: least recently used
// out, and manifests with very many references are not kept.
type refsMemo struct {
	mu  sync.Mutex
	m   map[digest.Digest]*list.Element
	lru *list.List // of refsMemoEntry; front: most recently used
}

type refsMemoEntry struct {
	d     digest.Digest
	items []covered
}

func newRefsMemo() *refsMemo {
	return &refsMemo{m: map[digest.Digest]*list.Element{}, lru: list.New()}
}

// items returns what the manifest with digest d and this body references,
// remembered or parsed now. The slice is shared: callers must not modify it.
func (r *refsMemo) items(d digest.Digest, mediaType string, body []byte) ([]covered, error) {
	r.mu.Lock()
	if el, ok := r.m[d]; ok {
		r.lru.MoveToFront(el)
		items := el.Value.(refsMemoEntry).items
		r.mu.Unlock()
		return items, nil
	}
	r.mu.Unlock()
	refs, err := parseRefs(mediaType, body)
	if err != nil {
		return nil, err
	}
	items := make([]covered, 0, len(refs.Manifests)+len(refs.Blobs))
	for _, c := range refs.Manifests {
		items = append(items, covered{c.Digest, c.Size})
	}
	for _, b := range refs.Blobs {
		items = append(items, covered{b.Digest, b.Size})
	}
	if len(items) > maxRefsMemoPerItem {
		return items, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[d]; !ok {
		r.m[d] = r.lru.PushFront(refsMemoEntry{d, items})
		for r.lru.Len() > maxRefsMemo {
			delete(r.m, r.lru.Remove(r.lru.Back()).(refsMemoEntry).d)
		}
	}
	return items, nil
}
