package trustfetch

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
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
		if len(ix.ByDigest(ix.targets[i%len(ix.targets)].SHA256)) == 0 {
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
