package trustfetch

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestFetchTarget(t *testing.T) {
	const name = "docker.io/acme/in-toto-metadata/root.layout"
	content := []byte(`{"signed":{"_type":"layout"}}`)
	tests := []struct {
		name    string
		tamper  func(r *testRepo, tf *metadata.TargetFiles, file string) // before publish
		max     int64
		wantErr string
	}{
		{name: "verified"},
		{name: "hash right, length one short", tamper: func(r *testRepo, tf *metadata.TargetFiles, _ string) { tf.Length-- },
			wantErr: "longer than the"},
		{name: "hash right, length one long", tamper: func(r *testRepo, tf *metadata.TargetFiles, _ string) { tf.Length++ },
			wantErr: "bytes, the trust data records"},
		{name: "content replaced on the server", tamper: func(r *testRepo, _ *metadata.TargetFiles, file string) {
			must(t, os.WriteFile(file, bytes.ToUpper(content), 0o644))
		}, wantErr: "content has sha256"},
		{name: "missing on the server", tamper: func(r *testRepo, _ *metadata.TargetFiles, file string) {
			must(t, os.Remove(file))
		}, wantErr: "404"},
		{name: "larger than MaxTargetBytes", max: int64(len(content) - 1), wantErr: "exceeds MaxTargetBytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			tf := r.addTarget(metadata.TARGETS, name, content, "")
			file := filepath.Join(r.dir, "targets", "docker.io", "acme", "in-toto-metadata", hex.EncodeToString(tf.Hashes["sha256"])+".root.layout")
			if tc.tamper != nil {
				tc.tamper(r, tf, file)
			}
			r.publish()
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.MaxTargetBytes = tc.max })
			target, ok := mustIndex(t, repo).Lookup(name)
			if !ok {
				t.Fatal("target missing")
			}
			got, err := repo.FetchTarget(t.Context(), target)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FetchTarget: %v, want an error containing %q", err, tc.wantErr)
				}
				if _, err := os.Stat(repo.cachedPath(target)); err == nil {
					t.Fatal("unverified content was cached")
				}
				return
			}
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("FetchTarget = %q, %v", got, err)
			}
			// Cached: served with the trust server down.
			srv.down.Store(true)
			n := srv.requests.Load()
			if got, err := repo.FetchTarget(t.Context(), target); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("cached FetchTarget = %q, %v", got, err)
			}
			if srv.requests.Load() != n {
				t.Fatal("a cached target was downloaded again")
			}
			// A corrupted cache entry is never served: it is fetched again.
			must(t, os.WriteFile(repo.cachedPath(target), bytes.ToUpper(content), 0o644))
			srv.down.Store(false)
			if got, err := repo.FetchTarget(t.Context(), target); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("FetchTarget over a corrupt cache = %q, %v", got, err)
			}
		})
	}
}

func TestFetchTargetRejectsBadTargets(t *testing.T) {
	r := newTestRepo(t)
	r.publish()
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	good := strings.Repeat("ab", 32)
	for _, tg := range []Target{
		{Name: "a", SHA256: "abc", Length: 1},
		{Name: "a", SHA256: strings.ToUpper(good), Length: 1},
		{Name: "a", SHA256: strings.Repeat("zz", 32), Length: 1},
		{Name: "a", SHA256: good, Length: -1},
		{Name: "../etc/passwd", SHA256: good, Length: 1},
		{Name: "a//b", SHA256: good, Length: 1},
	} {
		if _, err := repo.FetchTarget(t.Context(), tg); err == nil {
			t.Errorf("FetchTarget(%+v) succeeded", tg)
		}
	}
}

func TestTargetPath(t *testing.T) {
	h := strings.Repeat("0f", 32)
	tests := []struct {
		name       string
		consistent bool
		want       string
	}{
		{"docker.io/acme/app:1.0", true, "docker.io/acme/" + h + ".app:1.0"},
		{"docker.io/acme/app:1.0", false, "docker.io/acme/app:1.0"},
		{"root.layout", true, h + ".root.layout"},
		{"a b/c#d?e", false, "a%20b/c%23d%3Fe"},
	}
	for _, tc := range tests {
		got, err := targetPath(Target{Name: tc.name, SHA256: h}, tc.consistent)
		if err != nil || got != tc.want {
			t.Errorf("targetPath(%q, %v) = %q, %v; want %q", tc.name, tc.consistent, got, err, tc.want)
		}
	}
}
