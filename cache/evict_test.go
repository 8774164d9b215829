package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

func putBlob(t *testing.T, c *Cache, data []byte) digest.Digest {
	t.Helper()
	dgst := digest.FromBytes(data)
	b, err := c.Blob(context.Background(), dgst, int64(len(data)), staticUpstream(data).fetch)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(t, b, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	c.wg.Wait()
	return dgst
}

func TestEvictionLeastRecentlyUsed(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			ctx := context.Background()
			d, _ := dc.new(t)
			c, reg := newTestCache(t, d, Options{MaxSize: 3000})
			blob := func(fill byte) []byte { return bytes.Repeat([]byte{fill}, 1000) }
			manifest := []byte(`{"schemaVersion":2,"padding":"` + string(bytes.Repeat([]byte("m"), 70)) + `"}`)
			mDgst := digest.FromBytes(manifest)

			a := putBlob(t, c, blob('a'))
			b := putBlob(t, c, blob('b'))
			cc := putBlob(t, c, blob('c'))
			if _, err := c.StatBlob(ctx, a); err != nil { // a becomes most recently used
				t.Fatal(err)
			}
			steps := []struct {
				do      func()
				present []digest.Digest
				evicted []digest.Digest
			}{
				{ // 3100 bytes > 3000: b is the least recently used
					do:      func() { must(t, c.PutManifest(ctx, mDgst, ociManifest, manifest)) },
					present: []digest.Digest{a, cc},
					evicted: []digest.Digest{b},
				},
				{ // d pushes out c, untouched since its commit
					do:      func() { putBlob(t, c, blob('d')) },
					present: []digest.Digest{a, blob2dgst(blob('d'))},
					evicted: []digest.Digest{cc},
				},
				{ // the manifest is read, so e pushes out a instead
					do: func() {
						_, _, err := c.GetManifest(ctx, mDgst)
						must(t, err)
						putBlob(t, c, blob('e'))
					},
					present: []digest.Digest{blob2dgst(blob('d')), blob2dgst(blob('e'))},
					evicted: []digest.Digest{a},
				},
			}
			for i, s := range steps {
				s.do()
				// Checked without touching, so the checks do not reorder the LRU.
				for _, p := range s.present {
					if !committed(t, c, key{kindBlob, p}) {
						t.Fatalf("step %d: %s evicted out of LRU order", i, p)
					}
				}
				for _, e := range s.evicted {
					if committed(t, c, key{kindBlob, e}) {
						t.Fatalf("step %d: %s should have been evicted", i, e)
					}
				}
				if !committed(t, c, key{kindManifest, mDgst}) {
					t.Fatalf("step %d: manifest evicted out of LRU order", i)
				}
				if c.Size() > 3000 {
					t.Fatalf("step %d: Size() = %d above MaxSize", i, c.Size())
				}
			}
			if c.Size() != 2000+int64(len(manifest)) {
				t.Fatalf("Size() = %d, want %d", c.Size(), 2000+len(manifest))
			}
			if files := driverFiles(t, d); len(files) != 4 { // 2 blobs, manifest data + mediatype
				t.Fatalf("storage holds %v, want exactly the 3 live objects", files)
			}
			if got := metricValue(t, reg, "trustproxy_cache_evictions_total"); got != 3 {
				t.Errorf("evictions = %v, want 3", got)
			}
			if got := metricValue(t, reg, "trustproxy_cache_stored_bytes"); got != float64(c.Size()) {
				t.Errorf("stored bytes gauge = %v, want %d", got, c.Size())
			}
		})
	}
}

// committed reports whether k is in the index, and checks that the driver agrees.
func committed(t *testing.T, c *Cache, k key) bool {
	t.Helper()
	c.mu.Lock()
	inIndex := c.ix.get(k) != nil
	c.mu.Unlock()
	_, err := c.d.Stat(context.Background(), k.dataPath())
	if err != nil && !isPathNotFound(err) {
		t.Fatal(err)
	}
	if inDriver := err == nil; inDriver != inIndex {
		t.Fatalf("%s: in index %v, in driver %v", k, inIndex, inDriver)
	}
	return inIndex
}

func blob2dgst(b []byte) digest.Digest { return digest.FromBytes(b) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A blob that can never fit is still served, verified, to the clients that
// asked, but not committed; the cache's contents are left alone.
func TestBlobLargerThanCacheIsServedNotCached(t *testing.T) {
	ctx := context.Background()
	d := inmemoryDriver()
	c, _ := newTestCache(t, d, Options{MaxSize: 1000})
	small := putBlob(t, c, bytes.Repeat([]byte{'s'}, 900))
	data, dgst := randomBytes(t, 5000)
	b, err := c.Blob(ctx, dgst, -1, staticUpstream(data).fetch)
	if err != nil {
		t.Fatal(err)
	}
	c.wg.Wait() // the download is over before the reader opens: the handle keeps the spool
	if got, err := readBlob(t, b, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read of an uncacheable blob: %d bytes, %v", len(got), err)
	}
	if _, err := c.StatBlob(ctx, dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("blob above MaxSize committed: %v", err)
	}
	if _, err := c.StatBlob(ctx, small); err != nil {
		t.Fatalf("an uncacheable blob evicted others: %v", err)
	}
	if err := c.PutManifest(ctx, digest.FromBytes(data[:1001]), ociManifest, data[:1001]); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("manifest above MaxSize: %v, want ErrTooLarge", err)
	}
}

// The spool of a verified but uncommitted blob lives as long as a handle
// that may still read it, and is closed once the last one is gone.
func TestSpoolReleasedWithLastHandle(t *testing.T) {
	c, _ := newTestCache(t, inmemoryDriver(), Options{MaxSize: 10})
	data, dgst := randomBytes(t, 5000)
	b, err := c.Blob(context.Background(), dgst, -1, staticUpstream(data).fetch)
	if err != nil {
		t.Fatal(err)
	}
	dl := b.(*inflightBlob).dl
	c.wg.Wait()
	rc, err := b.NewReader(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b = nil
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	rc.Close()
	for range 10 {
		runGC()
		dl.mu.Lock()
		closed := dl.spoolClosed
		dl.mu.Unlock()
		if closed {
			return
		}
	}
	t.Fatal("spool still open after the last handle and reader were gone")
}
