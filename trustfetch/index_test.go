package trustfetch

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestTargetCustom(t *testing.T) {
	tests := []struct {
		custom    string
		mediaType string
		inToto    []string
	}{
		{"", "", nil},
		{`{}`, "", nil},
		{`{"mediaType":"application/vnd.cnab.manifest.v1"}`, "application/vnd.cnab.manifest.v1", nil},
		{`{"in-toto":["a/root.layout","b.pub"],"mediaType":"x"}`, "x", []string{"a/root.layout", "b.pub"}},
		{`{"in-toto":"not a list","mediaType":7}`, "", nil},
		{`[1,2]`, "", nil},
	}
	for _, tc := range tests {
		tg := Target{Custom: json.RawMessage(tc.custom)}
		if got := tg.MediaType(); got != tc.mediaType {
			t.Errorf("%s: MediaType() = %q, want %q", tc.custom, got, tc.mediaType)
		}
		if got := tg.InToto(); !slices.Equal(got, tc.inToto) {
			t.Errorf("%s: InToto() = %q, want %q", tc.custom, got, tc.inToto)
		}
	}
}

func TestIndexTables(t *testing.T) {
	h := func(c byte) string { return strings.Repeat(string([]byte{c}), 64) }
	ix := newIndex([]Target{
		{Name: "b:1", SHA256: h('b')},
		{Name: "a:latest", SHA256: h('a')},
		{Name: "a:1", SHA256: h('a')},
		{Name: "c:1", SHA256: h('c')},
	})
	if got := ix.Names(); !slices.Equal(got, []string{"a:1", "a:latest", "b:1", "c:1"}) {
		t.Fatalf("Names() = %v", got)
	}
	same := ix.ByDigest(h('a'))
	if len(same) != 2 || same[0].Name != "a:1" || same[1].Name != "a:latest" {
		t.Fatalf("ByDigest(a) = %+v", same)
	}
	// Appending to a result must not clobber the next digest's entry.
	_ = append(same, Target{Name: "x", SHA256: h('x')})
	if tg, _ := ix.Lookup("b:1"); tg.Name != "b:1" || ix.ByDigest(h('b'))[0].Name != "b:1" {
		t.Fatal("appending to ByDigest's result modified the index")
	}
	if ix.ByDigest(h('z')) != nil || ix.Len() != 4 {
		t.Fatal("unknown digest or Len wrong")
	}
	if _, ok := ix.Lookup("nope"); ok {
		t.Fatal("Lookup of an unknown name succeeded")
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	ix := syntheticIndex(1000)
	repo := &Repository{now: time.Now}
	ix.expires = time.Now().Add(time.Hour)
	repo.current.Store(ix)
	name := "docker.io/acme/app-000500:1.0"
	tg, _ := ix.Lookup(name)
	sum := tg.SHA256
	prefixed := "sha256:" + sum
	for _, tc := range []struct {
		what   string
		f      func()
		allocs float64
	}{
		{"Index", func() { _, _ = repo.Index() }, 0},
		// The hex form of the sha256 is made per call: keeping it would
		// cost 80 bytes per target.
		{"Lookup", func() { _, _ = ix.Lookup(name) }, 1},
		{"ByDigest", func() { _ = ix.ByDigest(sum) }, 2},
		{"ByDigest with prefix", func() { _ = ix.ByDigest(prefixed) }, 2},
	} {
		if n := testing.AllocsPerRun(100, tc.f); n > tc.allocs {
			t.Errorf("%s allocates %v times per call, want at most %v", tc.what, n, tc.allocs)
		}
	}
}

// An unchanged snapshot reuses the index: only the timestamp moved.
func TestUnchangedSnapshotReusesTables(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	before := mustIndex(t, repo)

	r.timestamp.Signed.Expires = in(48 * time.Hour)
	r.signTimestamp()
	must(t, repo.Refresh(t.Context()))
	after := mustIndex(t, repo)
	if v := after.Versions(); v.Timestamp != 2 || v.Snapshot != 1 {
		t.Fatalf("Versions() = %+v", v)
	}
	if !after.Expires().Equal(r.timestamp.Signed.Expires) || after.Expires().Equal(before.Expires()) {
		t.Fatalf("Expires() = %s, want the new timestamp's %s", after.Expires(), r.timestamp.Signed.Expires)
	}
	if &after.byDigest[0] != &before.byDigest[0] || after.Len() != before.Len() {
		t.Fatal("tables rebuilt although the snapshot did not change")
	}
	// A delegated role's expiry still counts on the reused path.
	r2 := releasesRepo(t)
	r2.roles["targets/releases"].Signed.Expires = in(time.Hour)
	r2.dirty["targets/releases"] = true
	r2.publish()
	srv2 := newTrustServer(t, r2.dir)
	clock := newTestClock()
	repo2 := r2.open(srv2.metadataURL(), func(_ *Config, o *Options) { o.Now = clock.Now })
	r2.signTimestamp()
	must(t, repo2.Refresh(t.Context()))
	if ix := mustIndex(t, repo2); !ix.Expires().Equal(r2.roles["targets/releases"].Signed.Expires) {
		t.Fatalf("Expires() = %s, want targets/releases' %s", ix.Expires(), r2.roles["targets/releases"].Signed.Expires)
	}
	clock.Set(r2.roles["targets/releases"].Signed.Expires.Add(time.Second))
	r2.timestamp.Signed.Expires = clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
	r2.signTimestamp()
	if err := repo2.Refresh(t.Context()); err == nil {
		t.Fatal("refresh succeeded with an expired delegated role on the reused path")
	}
}

// Readers never block on, or see a half-built index from, a refresh.
// Run with -race.
func TestLookupsDuringRefresh(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	appHash := app1Hash(r)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ix, err := repo.Index()
				if err != nil {
					t.Error(err)
					return
				}
				if _, ok := ix.Lookup("docker.io/acme/app:1.0"); !ok {
					t.Error("app missing")
					return
				}
				if len(ix.ByDigest(appHash)) != 1 {
					t.Error("ByDigest(app) lost")
					return
				}
			}
		})
	}
	for i := range 5 {
		r.addTarget("targets/releases", fmt.Sprintf("docker.io/acme/app:%d.1", i), []byte{byte(i)}, "")
		r.publish()
		var rw sync.WaitGroup
		for range 2 { // concurrent refreshes serialize
			rw.Go(func() {
				if err := repo.Refresh(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		rw.Wait()
	}
	close(stop)
	wg.Wait()
	if got := mustIndex(t, repo).Versions().Snapshot; got != 6 {
		t.Fatalf("snapshot version %d, want 6", got)
	}
}

// syntheticIndex builds an index of n targets without TUF, for benchmarks
// of the lookup tables alone.
func syntheticIndex(n int) *Index {
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = Target{
			Name:   fmt.Sprintf("docker.io/acme/app-%06d:1.0", i),
			Length: 1000 + int64(i),
			SHA256: fmt.Sprintf("%064x", i*7919),
			Role:   metadata.TARGETS,
		}
	}
	return newIndex(targets)
}

func TestSortDigests(t *testing.T) {
	refs := make([]digestRef, 100_000)
	for i := range refs {
		refs[i] = digestRef{prefix: uint64(i*2654435761)<<20 ^ uint64(i%7), seg: uint32(i % 13), ent: uint32(i)}
	}
	sortDigests(refs)
	for i := 1; i < len(refs); i++ {
		a, b := refs[i-1], refs[i]
		if a.prefix > b.prefix || (a.prefix == b.prefix && a.seg > b.seg) {
			t.Fatalf("out of order at %d: %+v %+v", i, a, b)
		}
	}
}
