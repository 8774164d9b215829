package trustfetch

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/internal/benchgen"
)

// largeRepo publishes n targets (metadata only) spread over 2^bits succinct
// hash-bin roles, the layout a TUF repository of this size would use.
func largeRepo(tb testing.TB, n, bits int) *testRepo {
	tb.Helper()
	r := newTestRepo(tb)
	r.skipContent = true
	r.delegateBins(metadata.TARGETS, "bins", bits)
	custom := json.RawMessage(`{"mediaType":"` + manifestType + `"}`)
	for i := range n {
		name := fmt.Sprintf("docker.io/acme/app-%06d:1.0", i)
		sum := sha256.Sum256([]byte(name))
		bin := r.binFor(metadata.TARGETS, name)
		r.roles[bin].Signed.Targets[name] = &metadata.TargetFiles{Length: int64(1000 + i%5000), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom}
	}
	r.publish()
	return r
}

func TestManyTargetsInHashBins(t *testing.T) {
	const n = 5000
	r := largeRepo(t, n, 6)
	repo := r.open(r.metadataDir(), nil)
	ix := mustIndex(t, repo)
	if ix.Len() != n {
		t.Fatalf("Len() = %d, want %d", ix.Len(), n)
	}
	for _, i := range []int{0, 1234, n - 1} {
		name := fmt.Sprintf("docker.io/acme/app-%06d:1.0", i)
		tg, ok := ix.Lookup(name)
		if !ok || tg.Role != r.binFor(metadata.TARGETS, name) || tg.MediaType() != manifestType {
			t.Fatalf("Lookup(%s) = %+v, %v", name, tg, ok)
		}
		if got := ix.ByDigest(tg.SHA256); len(got) != 1 || got[0].Name != name {
			t.Fatalf("ByDigest(%s) = %+v", tg.SHA256, got)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	ix := syntheticIndex(100_000)
	names := ix.Names()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := ix.Lookup(names[i%len(names)]); !ok {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkByDigest(b *testing.B) {
	ix := syntheticIndex(100_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if len(ix.ByDigest(hexSHA256(&ix.segs[0].ents[i%len(ix.segs[0].ents)].sha256))) == 0 {
			b.Fatal("missing")
		}
		i++
	}
}

func BenchmarkIndex(b *testing.B) {
	repo := &Repository{now: time.Now}
	ix := syntheticIndex(10)
	ix.expires = time.Now().Add(time.Hour)
	repo.current.Store(ix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := repo.Index(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh100k measures refreshes of a 100,000-target repository
// in 1024 hash bins served over HTTP:
//   - cold: an empty state directory, everything downloaded and verified
//   - changed: one bin changed, the index rebuilt, other roles from state
//   - unchanged: a new timestamp only; the index tables are reused
//
// index-MB is the heap the index retains.
func BenchmarkRefresh100k(b *testing.B) {
	const n = 100_000
	r := largeRepo(b, n, 10)
	srv := newTrustServer(b, r.dir)

	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			state := b.TempDir()
			b.StartTimer()
			repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
			if ix := mustIndex(b, repo); ix.Len() != n {
				b.Fatalf("Len() = %d", ix.Len())
			}
			b.StopTimer()
			_ = repo.Close()
			b.StartTimer()
		}
		b.StopTimer()
		index, repository := retainedMB(b, r, srv)
		b.ReportMetric(index, "index-MB")
		b.ReportMetric(repository, "repo-MB")
	})

	repo := r.open(srv.metadataURL(), nil)
	mustIndex(b, repo)
	b.Run("changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			name := fmt.Sprintf("docker.io/acme/app-%06d:1.0", i%n)
			tf := r.roles[r.binFor(metadata.TARGETS, name)].Signed.Targets[name]
			tf.Length++
			r.dirty[r.binFor(metadata.TARGETS, name)] = true
			r.publish()
			i++
			b.StartTimer()
			must(b, repo.Refresh(b.Context()))
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			r.signTimestamp()
			b.StartTimer()
			must(b, repo.Refresh(b.Context()))
		}
	})

}

// retainedMB is the heap a repository holding a 100k index keeps alive
// after its refresh: the index alone, and with the verified roles kept for
// the next refresh.
func retainedMB(b *testing.B, r *testRepo, srv *trustServer) (index, repository float64) {
	heap := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := heap()
	repo := r.open(srv.metadataURL(), nil)
	ix := mustIndex(b, repo)
	_ = repo.Close()
	withRoles := heap()
	repo.verified = nil
	indexOnly := heap()
	runtime.KeepAlive(ix)
	runtime.KeepAlive(repo)
	return float64(indexOnly-base) / (1 << 20), float64(withRoles-base) / (1 << 20)
}

// BenchmarkRefresh100kOneRole measures refreshes of a repository with
// 100,000 targets in the top-level targets role alone (about 23 MiB):
//   - unchanged: a new timestamp only
//   - changed: one target changed, the role loaded and the index rebuilt
//
// repo-MB is the heap the repository retains after the refreshes, index
// included; index-MB the index alone.
func BenchmarkRefresh100kOneRole(b *testing.B) {
	const n = 100_000
	r := newTestRepo(b)
	r.skipContent = true
	custom := json.RawMessage(`{"mediaType":"` + manifestType + `"}`)
	targets := r.roles[metadata.TARGETS].Signed.Targets
	for i := range n {
		name := fmt.Sprintf("docker.io/acme/app-%06d:1.0", i)
		sum := sha256.Sum256([]byte(name))
		targets[name] = &metadata.TargetFiles{Length: int64(1000 + i%5000), Hashes: metadata.Hashes{"sha256": sum[:]}, Custom: &custom}
	}
	r.publish()
	srv := newTrustServer(b, r.dir)
	repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.MaxMetadataBytes = 128 << 20 })
	if ix := mustIndex(b, repo); ix.Len() != n {
		b.Fatalf("Len() = %d", ix.Len())
	}
	report := func(b *testing.B) {
		heap := func() int64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			return int64(m.HeapAlloc)
		}
		// Drops the repository's state: the next refresh starts afresh.
		all := heap()
		repo.verified = nil
		indexOnly := heap()
		repo.current.Store(nil)
		none := heap()
		b.ReportMetric(float64(all-none)/(1<<20), "repo-MB")
		b.ReportMetric(float64(indexOnly-none)/(1<<20), "index-MB")
	}
	b.Run("unchanged", func(b *testing.B) {
		b.ReportAllocs()
		peak := sampleHeap()
		for b.Loop() {
			b.StopTimer()
			r.signTimestamp()
			b.StartTimer()
			must(b, repo.Refresh(b.Context()))
		}
		b.StopTimer()
		b.ReportMetric(peak(), "peak-heap-MB")
		report(b)
	})
	b.Run("changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		var peak float64
		for b.Loop() {
			b.StopTimer()
			targets[fmt.Sprintf("docker.io/acme/app-%06d:1.0", i%n)].Length++
			r.dirty[metadata.TARGETS] = true
			r.publish()
			i++
			base := liveHeap()
			stop := sampleHeap()
			b.StartTimer()
			must(b, repo.Refresh(b.Context()))
			b.StopTimer()
			peak = max(peak, stop()-base)
			b.StartTimer()
		}
		b.StopTimer()
		// Above the live heap before the refresh (the test's own copy of
		// the repository included there).
		b.ReportMetric(peak, "peak-extra-heap-MB")
		report(b)
	})
}

// sampleHeap samples the live heap (objects not yet collected included)
// every few milliseconds until the returned function is called, which
// returns the largest sample in MiB.
func sampleHeap() func() float64 {
	done, result := make(chan struct{}), make(chan float64)
	go func() {
		s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				result <- float64(peak) / (1 << 20)
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		return <-result
	}
}

// BenchmarkHashBins1M measures a repository of 1,000,000 targets in
// succinct hash bins (1,024 of them, about 230 MiB of metadata), published
// by trustproxy's own publisher and served over HTTP:
//   - cold: Open on an empty state directory, everything downloaded and
//     verified (ready-s, fetched-MB, peak-extra-heap-MB, retained-MB)
//   - warm: Open on the state directory of the cold run with nothing
//     changed (a restart)
//   - changed: one target added (one bin), then Refresh: only the
//     timestamp, snapshot and that bin are fetched (fetched-%)
//   - lookup: Index.Lookup of random names
//
// BENCH_TARGETS overrides the size (e.g. 100000 for a quick look).
func BenchmarkHashBins1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_TARGETS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	gen, err := benchgen.PublishHashBins(b.Context(), filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), "up", n, 0)
	must(b, err)
	rootPath := filepath.Join(dir, "root.json")
	must(b, os.WriteFile(rootPath, gen.Root, 0o644))
	srv := newTrustServer(b, gen.Dir)
	repoBytes := dirSize(b, filepath.Join(gen.Dir, "metadata"))
	open := func(state string) *Repository {
		r := &testRepo{t: b, rootPath: rootPath}
		return r.open(srv.metadataURL(), func(c *Config, o *Options) {
			c.StateDir, c.MaxMetadataBytes = state, 64<<20
			o.Logger = zap.NewNop()
		})
	}
	var repo *Repository
	state := ""
	start := func(b *testing.B, fresh bool) {
		for b.Loop() {
			b.StopTimer()
			if repo != nil {
				_ = repo.Close()
			}
			repo = nil
			if fresh || state == "" {
				// Not b.TempDir: the warm run reuses the cold run's.
				state = filepath.Join(dir, fmt.Sprintf("state-%d", time.Now().UnixNano()))
			}
			base := liveHeap()
			sent := srv.sent.Load()
			peak := sampleHeap()
			b.StartTimer()
			repo = open(state)
			b.StopTimer()
			b.ReportMetric(peak()-base, "peak-extra-heap-MB")
			b.ReportMetric(float64(srv.sent.Load()-sent)/(1<<20), "fetched-MB")
			if ix := mustIndex(b, repo); ix.Len() != n {
				b.Fatalf("Len() = %d", ix.Len())
			}
			b.ReportMetric(liveHeap()-base, "retained-MB")
			b.StartTimer()
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "ready-s")
		b.ReportMetric(float64(repoBytes)/(1<<20), "repo-MB")
	}
	b.Run("cold", func(b *testing.B) { start(b, true) })
	b.Run("warm", func(b *testing.B) { start(b, false) })
	b.Run("changed", func(b *testing.B) {
		added, peakExtra, fetched := 0, 0.0, int64(0)
		for b.Loop() {
			b.StopTimer()
			_, err := gen.AddOne(b.Context(), "up", n+added)
			must(b, err)
			added++
			base := liveHeap()
			sent := srv.sent.Load()
			peak := sampleHeap()
			b.StartTimer()
			must(b, repo.Refresh(b.Context()))
			b.StopTimer()
			peakExtra = max(peakExtra, peak()-base)
			fetched = max(fetched, srv.sent.Load()-sent)
			if ix := mustIndex(b, repo); ix.Len() != n+added {
				b.Fatalf("Len() = %d, want %d", ix.Len(), n+added)
			}
			b.StartTimer()
		}
		b.ReportMetric(peakExtra, "peak-extra-heap-MB")
		b.ReportMetric(float64(fetched)/(1<<10), "fetched-KB")
		b.ReportMetric(100*float64(fetched)/float64(repoBytes), "fetched-%")
	})
	b.Run("lookup", func(b *testing.B) {
		ix := mustIndex(b, repo)
		names := make([]string, 4096)
		for i := range names {
			names[i] = benchgen.Name("up", (i*7919)%n)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, ok := ix.Lookup(names[i%len(names)]); !ok {
				b.Fatal("missing")
			}
			i++
		}
	})
}

func liveHeap() float64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

func dirSize(tb testing.TB, dir string) int64 {
	var size int64
	entries, err := os.ReadDir(dir)
	must(tb, err)
	for _, e := range entries {
		fi, err := e.Info()
		must(tb, err)
		size += fi.Size()
	}
	return size
}
