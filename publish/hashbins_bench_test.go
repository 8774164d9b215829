package publish_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/publish"
)

// hashBinSizes are the repository sizes the hash-bin benchmarks run at;
// select one with -bench 'HashBins.*/targets=1000000$'.
var hashBinSizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkHashBinsPublish creates a repository with publish.HashBinsFor(n)
// hash bins, stages n targets in one bulk edit and publishes them (what
// `trust init --hash-bins` then `trust add-targets --publish` do). Making
// up the n targets is not timed.
func BenchmarkHashBinsPublish(b *testing.B) {
	for _, n := range hashBinSizes {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			ctx := context.Background()
			targets := benchgen.Targets("up", n)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				base := b.TempDir()
				b.StartTimer()
				r, err := publish.Init(ctx, filepath.Join(base, "repo"), filepath.Join(base, "keys"), publish.InitOptions{HashBins: publish.HashBinsFor(n)})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := r.AddTargets("", targets); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Publish(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHashBinsAddOne adds one target to a published n-target hash-bin
// repository and publishes, the way `trust add-targets --publish` does: a
// fresh Repo (a new process) each time, re-signing one bin, snapshot and
// timestamp. It reports the sizes a client refreshing afterwards reads:
// timestamp + snapshot + the changed bin, against the whole metadata.
func BenchmarkHashBinsAddOne(b *testing.B) {
	parent := b
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
				parent.Cleanup(func() { _ = os.RemoveAll(base) }) // not b's: it ends before the next run
				start := time.Now()
				if h, err = benchgen.PublishHashBins(ctx, filepath.Join(base, "repo"), filepath.Join(base, "keys"), "up", n, 0); err != nil {
					b.Fatal(err)
				}
				b.Logf("staged and published %d targets in %.1f s", n, time.Since(start).Seconds())
				published[n] = h
			}
			offset := added[n]
			added[n] += b.N
			var bin string
			b.ResetTimer()
			for i := range b.N {
				r, err := publish.Open(h.Dir, h.KeysDir, publish.Options{})
				if err != nil {
					b.Fatal(err)
				}
				fresh := &benchgen.HashBinRepo{Repo: r, Dir: h.Dir, KeysDir: h.KeysDir}
				if bin, err = fresh.AddOne(ctx, "up", n+offset+i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			refresh, total := refreshBytes(b, h.Dir, bin)
			b.ReportMetric(float64(refresh), "refresh-bytes")
			b.ReportMetric(100*float64(refresh)/float64(total), "refresh-%")
		})
	}
}

// refreshBytes is what a client holding the previous version reads after
// bin changed (timestamp, snapshot, the bin), and the size of the current
// metadata (every role's newest version).
func refreshBytes(b *testing.B, repoDir, bin string) (refresh, total int64) {
	b.Helper()
	entries, err := os.ReadDir(filepath.Join(repoDir, "metadata"))
	if err != nil {
		b.Fatal(err)
	}
	newest := map[string]struct {
		v    int
		size int64
	}{}
	for _, e := range entries {
		var v int
		var role string
		if _, err := fmt.Sscanf(e.Name(), "%d.", &v); err != nil {
			role, v = e.Name(), 0 // timestamp.json
		} else {
			role = strings.SplitN(e.Name(), ".", 2)[1]
		}
		info, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		if cur, ok := newest[role]; !ok || v > cur.v {
			newest[role] = struct {
				v    int
				size int64
			}{v, info.Size()}
		}
	}
	for role, f := range newest {
		total += f.size
		switch role {
		case "timestamp.json", "snapshot.json", bin + ".json":
			refresh += f.size
		}
	}
	return refresh, total
}
