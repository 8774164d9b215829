package cache

import (
	"context"
	"io"
	"runtime"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"
)

// heapPeak samples the live heap until stopped and returns the peak above
// the level at start.
type heapPeak struct {
	base, peak uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{})}
	h.base = heapObjects()
	h.peak = h.base
	h.wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.peak = max(h.peak, heapObjects())
			}
		}
	})
	return h
}

// Stop returns the peak growth of the heap in bytes.
func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.wg.Wait()
	h.peak = max(h.peak, heapObjects())
	return h.peak - h.base
}

func heapObjects() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// coldFetchStreaming pulls a size-byte blob that is never in memory as a
// whole (upstream streams it) through the cache and waits for its commit.
func coldFetchStreaming(tb testing.TB, c *Cache, seed byte, size int64) {
	tb.Helper()
	ctx := context.Background()
	dgst := prngDigest(tb, seed, size)
	up := &upstream{body: func(context.Context) io.Reader { return newPRNG(seed, size) }, size: size}
	b, err := c.Blob(ctx, dgst, size, up.fetch)
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := b.NewReader(ctx, 0)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != size {
		tb.Fatalf("cold read: %d bytes, %v", n, err)
	}
	c.wg.Wait()
	if got, err := c.StatBlob(ctx, dgst); err != nil || got != size {
		tb.Fatalf("not committed: %d, %v", got, err)
	}
}

// Memory stays flat whatever the blob size: a 64 MiB cold blob (download,
// follower read, commit to the filesystem driver) must not move the heap by
// more than a few copy buffers.
func TestColdBlobMemoryFlat(t *testing.T) {
	const size = 64 << 20
	c, _ := newTestCache(t, fsDriver(t.TempDir()), Options{})
	h := startHeapPeak()
	coldFetchStreaming(t, c, 1, size)
	growth := h.Stop()
	t.Logf("peak heap growth for a %d MiB cold blob: %.2f MiB", size>>20, float64(growth)/(1<<20))
	if growth > 8<<20 {
		t.Fatalf("heap grew by %d bytes for a %d byte blob: something buffers the blob", growth, size)
	}
}
