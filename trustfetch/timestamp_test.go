package trustfetch

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// roleReads counts requests for anything but the timestamp and root files:
// the snapshot and every targets role.
func roleReads(srv *trustServer) int {
	return srv.hitsOf(func(p string) bool {
		return !strings.HasSuffix(p, "/timestamp.json") && !strings.HasSuffix(p, ".root.json")
	})
}

func TestTimestampOnlyRefresh(t *testing.T) {
	r := releasesRepo(t)
	r.timestamp.Signed.Expires = in(time.Hour)
	r.signTimestamp()
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	withState := func(c *Config, _ *Options) { c.StateDir = state }
	repo := r.open(srv.metadataURL(), withState)
	before := mustIndex(t, repo)
	if !before.Expires().Equal(r.timestamp.Signed.Expires) {
		t.Fatalf("Expires() = %v, want the timestamp's %v", before.Expires(), r.timestamp.Signed.Expires)
	}
	old := r.copyTree()

	// go-tuf loads unchanged roles from the state directory, not over the
	// network; without them a full refresh has to download them again, so
	// the requests show whether a refresh read them at all.
	for _, f := range []string{"snapshot.json", "targets.json", "targets%2Freleases.json"} {
		must(t, os.Remove(filepath.Join(state, stateMetadataDir, f)))
	}
	reads := roleReads(srv)
	r.timestamp.Signed.Expires = in(48 * time.Hour)
	r.signTimestamp()
	must(t, repo.Refresh(t.Context()))
	if n := roleReads(srv); n != reads {
		t.Fatalf("a refresh with only a new timestamp read %d other metadata files", n-reads)
	}
	after := mustIndex(t, repo)
	want := before.Versions()
	want.Timestamp++
	if after.Versions() != want {
		t.Fatalf("Versions() = %+v, want %+v", after.Versions(), want)
	}
	if !after.Expires().Equal(r.timestamp.Signed.Expires) {
		t.Fatalf("Expires() = %v, want the new timestamp's %v", after.Expires(), r.timestamp.Signed.Expires)
	}
	if &after.byDigest[0] != &before.byDigest[0] || after.Len() != before.Len() {
		t.Fatal("the index tables were rebuilt")
	}
	served, err := os.ReadFile(filepath.Join(r.metadataDir(), "timestamp.json"))
	must(t, err)
	stored, err := os.ReadFile(filepath.Join(state, stateMetadataDir, "timestamp.json"))
	must(t, err)
	if !bytes.Equal(served, stored) {
		t.Fatal("the new timestamp was not stored in the state directory")
	}

	// The snapshot (7 days) now expires before the timestamp (20 days).
	r.timestamp.Signed.Expires = in(20 * 24 * time.Hour)
	r.signTimestamp()
	must(t, repo.Refresh(t.Context()))
	if ix := mustIndex(t, repo); !ix.Expires().Equal(r.snapshot.Signed.Expires) {
		t.Fatalf("Expires() = %v, want the snapshot's %v", ix.Expires(), r.snapshot.Signed.Expires)
	}
	if n := roleReads(srv); n != reads {
		t.Fatalf("a refresh with only a new timestamp requested %d other metadata files", n-reads)
	}
	current := mustIndex(t, repo)

	// The timestamp from before, naming the same snapshot, is a rollback.
	srv.serve(old)
	if err := repo.Refresh(t.Context()); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("Refresh with a rolled-back timestamp: %v, want ErrBadVersionNumber", err)
	}
	if mustIndex(t, repo) != current {
		t.Fatal("index replaced after a failed refresh")
	}
	// So it stays after a restart.
	must(t, repo.Close())
	restarted := r.open(srv.metadataURL(), withState)
	if _, err := restarted.Index(); !errors.Is(err, ErrNoTrustData) {
		t.Fatalf("Index after a restart on a rolled-back timestamp: %v, want ErrNoTrustData", err)
	}
	if err := restarted.Refresh(t.Context()); !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("Refresh after a restart on a rolled-back timestamp: %v, want ErrBadVersionNumber", err)
	}
}

// TestTimestampOnlyRefreshFallsBack checks that anything besides a new
// timestamp still goes through go-tuf's full refresh.
func TestTimestampOnlyRefreshFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *testRepo)
		check  func(t *testing.T, before, after *Index, err error)
	}{
		{"root rotated", func(r *testRepo) {
			r.rotateRoot(func() {}, func(old, _ []signature.Signer) []signature.Signer { return old })
			r.signTimestamp()
		}, func(t *testing.T, before, after *Index, err error) {
			must(t, err)
			if got := after.Versions().Root; got != before.Versions().Root+1 {
				t.Fatalf("root version %d, want %d", got, before.Versions().Root+1)
			}
		}},
		{"root rotated, timestamp key replaced", func(r *testRepo) {
			r.rotateRoot(func() { r.replaceKey(metadata.TIMESTAMP) }, func(old, _ []signature.Signer) []signature.Signer { return old })
			r.signTimestamp()
		}, func(t *testing.T, before, after *Index, err error) {
			must(t, err)
			if got := after.Versions(); got.Root != before.Versions().Root+1 || got.Timestamp != before.Versions().Timestamp+1 {
				t.Fatalf("versions %+v after %+v", got, before.Versions())
			}
		}},
		{"new snapshot", func(r *testRepo) {
			r.signSnapshot()
			r.signTimestamp()
		}, func(t *testing.T, before, after *Index, err error) {
			must(t, err)
			if got := after.Versions().Snapshot; got != before.Versions().Snapshot+1 {
				t.Fatalf("snapshot version %d, want %d", got, before.Versions().Snapshot+1)
			}
		}},
		{"target added", func(r *testRepo) {
			r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("app2"), "")
			r.publish()
		}, func(t *testing.T, _, after *Index, err error) {
			must(t, err)
			if _, ok := after.Lookup("docker.io/acme/app:2.0"); !ok {
				t.Fatal("the added target is not in the index")
			}
		}},
		{"new timestamp expired", func(r *testRepo) {
			r.timestamp.Signed.Expires = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			r.signTimestamp()
		}, func(t *testing.T, before, after *Index, err error) {
			if !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				t.Fatalf("Refresh: %v, want ErrExpiredMetadata", err)
			}
			if after != before {
				t.Fatal("index replaced after a failed refresh")
			}
		}},
		{"timestamp signed with a wrong key", func(r *testRepo) {
			s, _ := newSigner(r.t)
			r.signers[metadata.TIMESTAMP] = []signature.Signer{s}
			r.signTimestamp()
		}, func(t *testing.T, before, after *Index, err error) {
			var ue *metadata.ErrUnsignedMetadata
			if !errors.As(err, &ue) {
				t.Fatalf("Refresh: %v, want ErrUnsignedMetadata", err)
			}
			if after != before {
				t.Fatal("index replaced after a failed refresh")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			before := mustIndex(t, repo)
			tc.change(r)
			err := repo.Refresh(t.Context())
			after := repo.current.Load()
			tc.check(t, before, after, err)
		})
	}
}
