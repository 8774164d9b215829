package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// testManifest is a distinct manifest body of exactly n bytes.
func testManifest(i, n int) []byte {
	b := fmt.Appendf(nil, `{"schemaVersion":2,"n":%d,"p":"`, i)
	b = append(b, bytes.Repeat([]byte("x"), n-len(b)-2)...)
	return append(b, `"}`...)
}

// Verified manifest bodies are answered from memory within the budget,
// least recently used out; what is not held is read (and re-verified) from
// storage and then held.
func TestManifestMemory(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		budget int64
		// per step: which manifest is read, and whether memory answers it
		reads   []int
		fromMem []bool
	}{
		// Three 100-byte manifests in 250 bytes: the put of #2 pushed out #0;
		// reading #0 from storage pushes out #2, and so on.
		{name: "budget holds two", budget: 250, reads: []int{2, 1, 0, 1, 2, 0}, fromMem: []bool{true, true, false, true, false, false}},
		{name: "budget holds all", budget: 1000, reads: []int{0, 1, 2, 0}, fromMem: []bool{true, true, true, true}},
		{name: "off", budget: -1, reads: []int{0, 1, 2}, fromMem: []bool{false, false, false}},
		{name: "body larger than the budget", budget: 99, reads: []int{0, 0}, fromMem: []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			c, reg := newTestCache(t, fsDriver(root), Options{ManifestMemory: tc.budget})
			var bodies [][]byte
			var dgsts []digest.Digest
			for i := range 3 {
				b := testManifest(i, 100)
				bodies = append(bodies, b)
				dgsts = append(dgsts, digest.FromBytes(b))
				must(t, c.PutManifest(ctx, dgsts[i], ociManifest, b))
			}
			for step, i := range tc.reads {
				before := metricValue(t, reg, "trustproxy_cache_manifest_memory_hits_total")
				mt, got, err := c.GetManifest(ctx, dgsts[i])
				if err != nil || mt != ociManifest || !bytes.Equal(got, bodies[i]) {
					t.Fatalf("step %d: GetManifest #%d: %q, %q, %v", step, i, mt, got, err)
				}
				if mem := metricValue(t, reg, "trustproxy_cache_manifest_memory_hits_total") > before; mem != tc.fromMem[step] {
					t.Fatalf("step %d: #%d answered from memory = %v, want %v", step, i, mem, tc.fromMem[step])
				}
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if b := max(tc.budget, 0); c.ix.mem.bytes > b {
				t.Fatalf("memory holds %d bytes, budget %d", c.ix.mem.bytes, b)
			}
		})
	}
}

// The memory holds its own copy: a caller reusing the slice it put does not
// change what is served.
func TestManifestMemoryOwnsItsCopy(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, fsDriver(t.TempDir()), Options{})
	body := testManifest(0, 100)
	want := bytes.Clone(body)
	dgst := digest.FromBytes(body)
	must(t, c.PutManifest(ctx, dgst, ociManifest, body))
	copy(body, "garbage")
	if _, got, err := c.GetManifest(ctx, dgst); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetManifest after the caller reused its slice: %q, %v", got, err)
	}
}

// A manifest leaves memory with its committed object: evicted by the size
// bound, or vanished from storage, it is not answered from memory.
func TestManifestMemoryFollowsTheIndex(t *testing.T) {
	ctx := context.Background()
	t.Run("evicted by maxsize", func(t *testing.T) {
		c, _ := newTestCache(t, fsDriver(t.TempDir()), Options{MaxSize: 250})
		var dgsts []digest.Digest
		for i := range 3 {
			b := testManifest(i, 100)
			dgsts = append(dgsts, digest.FromBytes(b))
			must(t, c.PutManifest(ctx, dgsts[i], ociManifest, b))
		}
		if _, _, err := c.GetManifest(ctx, dgsts[0]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetManifest of the evicted manifest: %v, want ErrNotFound", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ix.mem.bytes != 200 || c.ix.mem.lru.Len() != 2 {
			t.Fatalf("memory holds %d bytes in %d bodies, want the 2 committed ones", c.ix.mem.bytes, c.ix.mem.lru.Len())
		}
	})
	t.Run("dropped when corrupted", func(t *testing.T) {
		// A body not held (budget 0 < its size) is read, found corrupt,
		// dropped; the held one next to it stays.
		root := t.TempDir()
		c, _ := newTestCache(t, fsDriver(root), Options{ManifestMemory: 150})
		a, b := testManifest(0, 100), testManifest(1, 100)
		da, db := digest.FromBytes(a), digest.FromBytes(b)
		must(t, c.PutManifest(ctx, da, ociManifest, a))
		must(t, c.PutManifest(ctx, db, ociManifest, b)) // pushes a out of memory
		k := key{kindManifest, da}
		if err := os.WriteFile(filepath.Join(root, k.dataPath()), testManifest(2, 100), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetManifest(ctx, da); !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("GetManifest of the corrupted manifest: %v, want ErrDigestMismatch", err)
		}
		if _, got, err := c.GetManifest(ctx, db); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("GetManifest of the held manifest: %v", err)
		}
	})
}
