package trustfetch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestTrustServerDownThenBack(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	clock := newTestClock()
	repo := r.open(srv.metadataURL(), func(_ *Config, o *Options) { o.Now = clock.Now })
	before := mustIndex(t, repo)

	srv.down.Store(true)
	if err := repo.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded against a dead server")
	}
	if ix := mustIndex(t, repo); ix != before {
		t.Fatal("index changed while the server was down")
	}

	// The last verified data expires: trustproxy itself stops vouching.
	clock.Set(before.Expires().Add(time.Minute))
	_, err := repo.Index()
	var ue *UnavailableError
	if !errors.Is(err, ErrExpired) || !errors.As(err, &ue) || ue.LastRefresh == nil {
		t.Fatalf("Index after expiry with the server down: %v", err)
	}

	// The server comes back with fresh metadata.
	r.timestamp.Signed.Expires = clock.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("2"), "")
	r.publish()
	srv.down.Store(false)
	must(t, repo.Refresh(t.Context()))
	ix := mustIndex(t, repo)
	if _, ok := ix.Lookup("docker.io/acme/app:2.0"); !ok {
		t.Fatal("new target missing after the server came back")
	}
}

func TestOpenWithServerDown(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	srv.down.Store(true)
	repo := r.open(srv.metadataURL(), nil)
	_, err := repo.Index()
	if !errors.Is(err, ErrNoTrustData) {
		t.Fatalf("Index with the server down since Open: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `trust repository "test" vouches for nothing: no verified trust data yet; last refresh failed:`) {
		t.Fatalf("message: %s", msg)
	}
	srv.down.Store(false)
	must(t, repo.Refresh(t.Context()))
	mustIndex(t, repo)
}

// Rollback protection lives in StateDir: a new Repository over the same
// state rejects metadata older than what an earlier one verified.
func TestRollbackProtectionSurvivesReopen(t *testing.T) {
	r := releasesRepo(t)
	v1 := r.copyTree()
	r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("2"), "")
	r.publish()
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	first := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
	if v := mustIndex(t, first).Versions(); v.Snapshot != 2 {
		t.Fatalf("first repository at %+v", v)
	}

	old := newTrustServer(t, v1)
	second := r.open(old.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
	_, err := second.Index()
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(ue.LastRefresh, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("reopened over old metadata: %v, want a rollback error", err)
	}

	// The same state with a fresh directory accepts the old metadata:
	// the protection really comes from the state.
	third := r.open(old.metadataURL(), nil)
	if v := mustIndex(t, third).Versions(); v.Snapshot != 1 {
		t.Fatalf("fresh state over v1: %+v", v)
	}
	// And the same state with the current server still works.
	fourth := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
	mustIndex(t, fourth)
}

func TestRootRotation(t *testing.T) {
	oldAndNew := func(old, new []signature.Signer) []signature.Signer {
		return append(append([]signature.Signer{}, old...), new...)
	}
	tests := []struct {
		name     string
		signWith func(old, new []signature.Signer) []signature.Signer
		ok       bool
	}{
		{"signed by old and new keys", oldAndNew, true},
		{"signed by the new key only", func(_, new []signature.Signer) []signature.Signer { return new }, false},
		{"signed by the old key only", func(old, _ []signature.Signer) []signature.Signer { return old }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			state := t.TempDir()
			repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
			mustIndex(t, repo)

			// Version 2 replaces the root and timestamp keys.
			oldTimestampKey := r.signers[metadata.TIMESTAMP]
			r.rotateRoot(func() {
				r.replaceKey(metadata.ROOT)
				r.replaceKey(metadata.TIMESTAMP)
			}, tc.signWith)
			r.publish()
			err := repo.Refresh(t.Context())
			if !tc.ok {
				if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
					t.Fatalf("Refresh: %v, want ErrUnsignedMetadata", err)
				}
				return
			}
			must(t, err)
			if v := mustIndex(t, repo).Versions(); v.Root != 2 || v.Timestamp != 2 {
				t.Fatalf("Versions() = %+v", v)
			}
			// The rotated root persists: a restart over the same state
			// trusts version 2 although version 1 is pinned...
			b, err := os.ReadFile(filepath.Join(state, "metadata", "root.json"))
			must(t, err)
			if !strings.Contains(string(b), `"version":2`) {
				t.Fatal("stored root is not version 2")
			}
			again := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state })
			if v := mustIndex(t, again).Versions(); v.Root != 2 {
				t.Fatalf("reopened: %+v", v)
			}
			// ...and refuses timestamps signed with the revoked key.
			r.signers[metadata.TIMESTAMP] = oldTimestampKey
			r.signTimestamp()
			if err := again.Refresh(t.Context()); !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
				t.Fatalf("timestamp signed by an unlisted key: %v", err)
			}
		})
	}
}
