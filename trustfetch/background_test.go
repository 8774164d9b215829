package trustfetch

import (
	"errors"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A background Open serves the state directory's verified data at once.
// That stands in for a trust server that cannot be reached, never for one
// that answers with metadata failing verification: a rollback served
// after a restart withdraws it, so every pull is denied with the reason.
func TestBackgroundOpenPersistedFallback(t *testing.T) {
	tests := []struct {
		name     string
		server   func(s, old *trustServer) string
		serving  bool
		errCheck func(error) bool
	}{
		{"trust server down: persisted data served, degraded", func(s, _ *trustServer) string {
			s.down.Store(true)
			return s.metadataURL()
		}, true, nil},
		{"trust server rolled back: persisted data withdrawn", func(_, old *trustServer) string {
			return old.metadataURL()
		}, false, func(err error) bool { return errors.Is(err, &metadata.ErrBadVersionNumber{}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			v1 := r.copyTree()
			r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("2"), "")
			r.publish()
			srv, old := newTrustServer(t, r.dir), newTrustServer(t, v1)
			state := t.TempDir()
			mustIndex(t, r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state }))

			loc := tc.server(srv, old)
			repo := r.open(loc, func(c *Config, o *Options) { c.StateDir = state; o.Background = true })
			if _, err := repo.Index(); err != nil {
				t.Fatalf("Index right after a background Open: %v (the persisted data should serve)", err)
			}
			refreshErr := repo.Refresh(t.Context())
			if refreshErr == nil {
				t.Fatal("Refresh succeeded")
			}
			ix, err := repo.Index()
			if tc.serving {
				if err != nil {
					t.Fatalf("Index after a failed refresh with the server down: %v", err)
				}
				if _, ok := ix.Lookup("docker.io/acme/app:2.0"); !ok {
					t.Fatal("persisted target missing")
				}
				if repo.Degraded() == nil {
					t.Fatal("Degraded is nil while persisted data is served")
				}
				return
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrNoTrustData) || !tc.errCheck(ue.LastRefresh) {
				t.Fatalf("Index after the server answered with a rollback: %v; want no trust data and the rollback error", err)
			}
		})
	}
}
