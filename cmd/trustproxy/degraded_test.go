package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// A restart while the TUF server accepts connections and then stalls, and
// the registry is down: serve opens its listener at once, /readyz says it
// serves degraded, and what the persisted metadata vouches for (and the
// cache holds) is pulled.
func TestServeRestartsWithTrustServerStalledAndRegistryDown(t *testing.T) {
	up := testenv.NewRegistry(t)
	img := up.PushRandomImage(t, "acme/app:1.0", 2048, 2, types.OCIManifestSchema1)
	want, _ := img.Digest()

	dir := t.TempDir()
	repo, keys := filepath.Join(dir, "repo"), filepath.Join(dir, "keys")
	trust := func(args ...string) { t.Helper(); mustTrust(t, args...) }
	trust("init", "--repo", repo, "--keys", keys)
	trust("add", up.Host+"/acme/app:1.0", "--repo", repo, "--insecure", "--name", "up/acme/app")
	trust("publish", "--repo", repo, "--keys", keys)

	var stalled atomic.Bool
	release := make(chan struct{})
	files := http.FileServer(http.Dir(repo))
	tuf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stalled.Load() {
			select { // accepted, then nothing: the stall
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer tuf.Close()
	defer close(release)

	config := fmt.Sprintf(`
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams:
  - {name: up, url: %q, default: true}
trust:
  corp: {metadata: %q, root: %q}
policy:
  rules:
    - {name: acme, match: "up/acme/**", mode: enforce, trust: corp}
`, filepath.Join(dir, "cache"), filepath.Join(dir, "state"), up.URL, tuf.URL+"/metadata", filepath.Join(repo, "metadata", "1.root.json"))
	serve := func(c *fileConfig) { c.backgroundTrust = true }

	first := startFromConfig(t, config)
	pulled, err := crane.Pull(first+"/up/acme/app:1.0", crane.Insecure)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	testenv.ReadLayers(t, pulled)
	// Commits follow the last byte: wait until the blobs are in the cache.
	layers, _ := img.Layers()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cached := 0
		for _, l := range layers {
			d, _ := l.Digest()
			if _, err := os.Stat(filepath.Join(dir, "cache", "blobs", "sha256", d.Hex[:2], d.Hex, "data")); err == nil {
				cached++
			}
		}
		if cached == len(layers) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run never committed its blobs")
		}
	}

	stalled.Store(true)
	up.Close()
	started := make(chan string, 1)
	go func() { started <- startFromConfigWith(t, config, serve) }()
	var second string
	select {
	case second = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the listener stayed closed while the trust server stalled")
	}
	var ready string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + second + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ready = fmt.Sprintf("%d %s", resp.StatusCode, b)
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
	}
	if !strings.HasPrefix(ready, "200 ready (degraded: trust corp serves persisted verified metadata") {
		t.Fatalf("/readyz: %s; want 200 and degraded", ready)
	}
	pulled, err = crane.Pull(second+"/up/acme/app:1.0", crane.Insecure)
	if err != nil {
		t.Fatalf("restart with the trust server stalled and the registry down: %v", err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Fatalf("pulled %s, want %s", d, want)
	}
	testenv.ReadLayers(t, pulled)
}
