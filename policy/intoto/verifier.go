package intoto

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Verifier remembers successful verifications so that the hot path pays for
// signature checks once per distinct (layout, layout keys, links, subject,
// parameters). The verification time is not part of the key: an entry holds
// only while Input.Now is before its Result.ValidUntil (layout expiry or an
// earlier certificate expiry), after which the input is verified again, and
// denied. Denials are not remembered. Concurrent calls for the same input
// wait for one verification instead of repeating it. Safe for concurrent use.
type Verifier struct {
	max int

	mu       sync.Mutex
	order    *list.List // of *cacheEntry, most recently used first
	entries  map[[32]byte]*list.Element
	inflight map[[32]byte]chan struct{}
}

type cacheEntry struct {
	key [32]byte
	res Result
}

// NewVerifier returns a Verifier that keeps at most maxEntries results
// (least recently used go first); maxEntries below 1 means 1.
func NewVerifier(maxEntries int) *Verifier {
	if maxEntries < 1 {
		maxEntries = 1
	}
	return &Verifier{
		max:      maxEntries,
		order:    list.New(),
		entries:  map[[32]byte]*list.Element{},
		inflight: map[[32]byte]chan struct{}{},
	}
}

// Verify is Verify with a cache; cached reports whether the result came from
// an earlier verification.
func (v *Verifier) Verify(ctx context.Context, in Input) (res Result, cached bool, err error) {
	key := cacheKey(in)
	for {
		v.mu.Lock()
		if el, ok := v.entries[key]; ok {
			e := el.Value.(*cacheEntry)
			if in.Now.Before(e.res.ValidUntil) {
				v.order.MoveToFront(el)
				v.mu.Unlock()
				return cloneResult(e.res), true, nil
			}
			v.order.Remove(el)
			delete(v.entries, key)
		}
		wait, busy := v.inflight[key]
		if !busy {
			done := make(chan struct{})
			v.inflight[key] = done
			v.mu.Unlock()
			defer func() {
				v.mu.Lock()
				delete(v.inflight, key)
				v.mu.Unlock()
				close(done)
			}()
			break
		}
		v.mu.Unlock()
		select {
		case <-wait:
			// Look again: a success is now cached; after a denial (which
			// may depend on the other caller's time) verify ourselves.
		case <-ctx.Done():
			return Result{}, false, ctx.Err()
		}
	}

	res, err = Verify(ctx, in)
	if err != nil {
		return Result{}, false, err
	}
	v.mu.Lock()
	v.entries[key] = v.order.PushFront(&cacheEntry{key: key, res: cloneResult(res)})
	for v.order.Len() > v.max {
		oldest := v.order.Back()
		v.order.Remove(oldest)
		delete(v.entries, oldest.Value.(*cacheEntry).key)
	}
	v.mu.Unlock()
	return res, false, nil
}

// Len reports how many results are cached.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.order.Len()
}

// cacheKey hashes everything a verification depends on except the time.
// Keys and links are order-independent inputs, so their digests are sorted.
func cacheKey(in Input) [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	set := func(items [][]byte) {
		sums := make([][]byte, len(items))
		for i, it := range items {
			s := sha256.Sum256(it)
			sums[i] = s[:]
		}
		sort.Slice(sums, func(i, j int) bool { return bytes.Compare(sums[i], sums[j]) < 0 })
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(sums)))
		field(n[:])
		for _, s := range sums {
			field(s)
		}
	}
	field([]byte("trustproxy/intoto/v1"))
	field(in.Layout)
	set(in.LayoutKeys)
	set(in.Links)
	field([]byte(in.SubjectName))
	field([]byte(in.SubjectSHA256))
	names := make([]string, 0, len(in.Parameters))
	for k := range in.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		field([]byte(k))
		field([]byte(in.Parameters[k]))
	}
	// A result verified under higher limits must not outlive a lowered one.
	l := in.Limits.WithDefaults()
	fmt.Fprintf(h, "limits %d %d %d %d %d %d", l.MaxSteps, l.MaxInspections, l.MaxLinks, l.MaxLayoutKeys, l.MaxParameters, l.MaxMetadataBytes)
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key
}

func cloneResult(r Result) Result {
	r.Steps = slices.Clone(r.Steps)
	r.Functionaries = slices.Clone(r.Functionaries)
	r.Inspections = slices.Clone(r.Inspections)
	return r
}
