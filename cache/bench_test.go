package cache

import (
	"bytes"
	"context"
	"io"
	"testing"
)

const benchBlobSize = 64 << 20

// BenchmarkBlobHit serves a committed 64 MiB blob: lookup, driver reader,
// copy to io.Discard. No re-hashing happens on this path.
func BenchmarkBlobHit(b *testing.B) {
	for _, dc := range driverCases {
		b.Run(dc.name, func(b *testing.B) {
			ctx := context.Background()
			d, _ := dc.new(b)
			c, _ := newTestCache(b, d, Options{})
			data, dgst := randomBytes(b, benchBlobSize)
			up := staticUpstream(data)
			blob, err := c.Blob(ctx, dgst, benchBlobSize, up.fetch)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := readBlob(b, blob, 0); err != nil {
				b.Fatal(err)
			}
			c.wg.Wait()
			b.SetBytes(benchBlobSize)
			b.ResetTimer()
			for b.Loop() {
				blob, err := c.Blob(ctx, dgst, benchBlobSize, up.fetch)
				if err != nil || !blob.Cached() {
					b.Fatalf("not a hit: %v", err)
				}
				rc, err := blob.NewReader(ctx, 0)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != benchBlobSize {
					b.Fatalf("read %d, %v", n, err)
				}
				rc.Close()
			}
		})
	}
}

// BenchmarkBlobCold pulls a 64 MiB blob that is not cached from an in-memory
// upstream: spool + sha256 while streaming, a follower read. "served" stops
// the clock when the client has all verified bytes; "committed" also counts
// the copy into the driver (with fsync on the filesystem driver).
func BenchmarkBlobCold(b *testing.B) {
	for _, dc := range driverCases {
		for _, mode := range []string{"served", "committed"} {
			b.Run(dc.name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				d, _ := dc.new(b)
				c, _ := newTestCache(b, d, Options{})
				data, dgst := randomBytes(b, benchBlobSize)
				k := key{kindBlob, dgst}
				up := &upstream{body: func(context.Context) io.Reader { return bytes.NewReader(data) }, size: benchBlobSize}
				b.SetBytes(benchBlobSize)
				b.ResetTimer()
				for b.Loop() {
					blob, err := c.Blob(ctx, dgst, benchBlobSize, up.fetch)
					if err != nil || blob.Cached() {
						b.Fatalf("not a miss: %v", err)
					}
					rc, err := blob.NewReader(ctx, 0)
					if err != nil {
						b.Fatal(err)
					}
					if n, err := io.Copy(io.Discard, rc); err != nil || n != benchBlobSize {
						b.Fatalf("read %d, %v", n, err)
					}
					rc.Close()
					if mode == "served" {
						b.StopTimer()
					}
					c.wg.Wait()
					b.StopTimer()
					c.drop(ctx, k)
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkBlobColdPeakHeap reports the peak heap growth while a 256 MiB
// blob streams cold through a filesystem cache (download, read, commit).
func BenchmarkBlobColdPeakHeap(b *testing.B) {
	const size = 256 << 20
	c, _ := newTestCache(b, fsDriver(b.TempDir()), Options{})
	b.SetBytes(size)
	var peak uint64
	seed := byte(0)
	for b.Loop() {
		seed++
		h := startHeapPeak()
		coldFetchStreaming(b, c, seed, size)
		peak = max(peak, h.Stop())
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
