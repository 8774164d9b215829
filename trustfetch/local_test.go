package trustfetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// An air-gapped site copies the repository to a directory.
func TestLocalDirectoryRepository(t *testing.T) {
	for _, form := range []string{"path", "file URL"} {
		t.Run(form, func(t *testing.T) {
			r := releasesRepo(t)
			loc := r.metadataDir()
			if form == "file URL" {
				loc = (&url.URL{Scheme: "file", Path: filepath.ToSlash(loc)}).String()
			}
			state := t.TempDir()
			repo := r.open(loc, func(c *Config, _ *Options) { c.StateDir = state })
			ix := mustIndex(t, repo)
			app, ok := ix.Lookup("docker.io/acme/app:1.0")
			if !ok || app.Role != "targets/releases" {
				t.Fatalf("Lookup = %+v, %v", app, ok)
			}
			if _, ok := ix.Lookup("docker.io/evil/app:1.0"); ok {
				t.Fatal("name outside the delegated paths admitted")
			}
			b, err := repo.FetchTarget(t.Context(), app)
			if err != nil || !bytes.Equal(b, []byte(`{"schemaVersion":2}`)) {
				t.Fatalf("FetchTarget = %q, %v", b, err)
			}

			// A new copy brought over with a rotated root and a revocation.
			r.rotateRoot(func() { r.replaceKey(metadata.ROOT) }, func(old, new []signature.Signer) []signature.Signer { return append(old, new...) })
			r.removeTarget("targets/releases", "docker.io/acme/app:1.0")
			r.publish()
			must(t, repo.Refresh(t.Context()))
			ix = mustIndex(t, repo)
			if _, ok := ix.Lookup("docker.io/acme/app:1.0"); ok || ix.Versions().Root != 2 {
				t.Fatalf("after update: %v %+v", ix.Names(), ix.Versions())
			}
		})
	}
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "1.targets"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "1.targets", "releases.json"), []byte("served layout"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "2.targets%2Freleases.json"), []byte("escaped layout"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "big.json"), bytes.Repeat([]byte("x"), 100), 0o644))
	s := &dirStore{dir: dir}
	ctx := context.Background()
	tests := []struct {
		rel     string
		want    string
		wantErr func(error) bool
	}{
		{rel: "1.targets%2Freleases.json", want: "served layout"},
		{rel: "2.targets%2Freleases.json", want: "escaped layout"},
		{rel: "3.root.json", wantErr: func(err error) bool {
			var he *metadata.ErrDownloadHTTP
			return errors.As(err, &he) && he.StatusCode == http.StatusNotFound
		}},
		{rel: "big.json", wantErr: func(err error) bool { var e *tooLargeError; return errors.As(err, &e) }},
		{rel: "..%2F..%2Fetc%2Fpasswd", wantErr: func(err error) bool { return err != nil }},
		{rel: "../x", wantErr: func(err error) bool { return err != nil }},
	}
	for _, tc := range tests {
		b, err := s.get(ctx, tc.rel, 50)
		if tc.wantErr != nil {
			if !tc.wantErr(err) {
				t.Errorf("get(%q) error = %v", tc.rel, err)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("get(%q) = %q, %v; want %q", tc.rel, b, err, tc.want)
		}
	}
}

// Object stores without list permission answer 403 for a missing key; a
// 403 for the next root must end root rotation like a 404, nothing else.
func TestForbiddenNextRootEndsRotation(t *testing.T) {
	r := releasesRepo(t)
	files := http.FileServer(http.Dir(r.dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(req.URL.Path))); err != nil {
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		files.ServeHTTP(w, req)
	}))
	defer srv.Close()
	repo := r.open(srv.URL+"/metadata", nil)
	mustIndex(t, repo)

	must(t, os.Remove(filepath.Join(r.dir, "targets", "docker.io", "acme", app1Hash(r)+".app:1.0")))
	app, _ := mustIndex(t, repo).Lookup("docker.io/acme/app:1.0")
	_, err := repo.FetchTarget(t.Context(), app)
	var he *metadata.ErrDownloadHTTP
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("FetchTarget of a missing target: %v, want the 403", err)
	}
}

func app1Hash(r *testRepo) string {
	return r.roles["targets/releases"].Signed.Targets["docker.io/acme/app:1.0"].Hashes["sha256"].String()
}
