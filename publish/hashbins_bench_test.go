package publish_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/publish"
)

// hashBinSizes are the repository sizes the hash-bin benchmarks run at;
// select one with -bench 'HashBins.*/targets=1000000'.
var hashBinSizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkHashBinsPublish stages n targets in one bulk edit into a new
// hash-bin repository (publish.HashBinsFor(n) bins) and publishes them.
func BenchmarkHashBinsPublish(b *testing.B) {
	for _, n := range hashBinSizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				b.StopTimer()
				base := b.TempDir()
				b.StartTimer()
				if _, err := benchgen.PublishHashBins(ctx, filepath.Join(base, "repo"), filepath.Join(base, "keys"), "up", n, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHashBinsAddOne adds one target to a published n-target hash-bin
// repository and publishes, the way `trust add --publish` does: a fresh
// Repo (a new process) each time, re-signing one bin, snapshot and
// timestamp.
func BenchmarkHashBinsAddOne(b *testing.B) {
	published := map[int]*benchgen.HashBinRepo{}
	added := map[int]int{}
	for _, n := range hashBinSizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			ctx := context.Background()
			h := published[n]
			if h == nil { // testing runs this function more than once per size
				base, err := os.MkdirTemp("", "hashbins-bench")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = os.RemoveAll(base) })
				start := time.Now()
				if h, err = benchgen.PublishHashBins(ctx, filepath.Join(base, "repo"), filepath.Join(base, "keys"), "up", n, 0); err != nil {
					b.Fatal(err)
				}
				b.Logf("staged and published %d targets in %.1f s", n, time.Since(start).Seconds())
				published[n] = h
			}
			offset := added[n]
			added[n] += b.N
			b.ResetTimer()
			for i := range b.N {
				r, err := publish.Open(h.Dir, h.KeysDir, publish.Options{})
				if err != nil {
					b.Fatal(err)
				}
				fresh := &benchgen.HashBinRepo{Repo: r, Dir: h.Dir, KeysDir: h.KeysDir}
				if _, err := fresh.AddOne(ctx, "up", n+offset+i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
