package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/trustproxy/trustproxy/publish"
)

// newRepo initialises a repository in fresh directories.
func newRepo(t *testing.T, opts publish.InitOptions) (*publish.Repo, string, string) {
	t.Helper()
	base := t.TempDir()
	repoDir, keysDir := filepath.Join(base, "repo"), filepath.Join(base, "keys")
	r, err := publish.Init(context.Background(), repoDir, keysDir, opts)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	return r, repoDir, keysDir
}

func mustPublish(t *testing.T, r *publish.Repo) *publish.Result {
	t.Helper()
	res, err := r.Publish(context.Background())
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPublishVerifiesWithGoTUF is the end-to-end contract: what this package
// writes, go-tuf's own client accepts, over HTTP and from a directory, for
// every key type.
func TestPublishVerifiesWithGoTUF(t *testing.T) {
	for _, keyType := range []string{publish.KeyEd25519, publish.KeyECDSA, publish.KeyRSA} {
		t.Run(keyType, func(t *testing.T) {
			r, repoDir, _ := newRepo(t, publish.InitOptions{KeyType: keyType})
			manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
			const name = "docker.io/library/alpine:3.20"
			custom := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json"}
			if _, err := r.AddTargetFile("", name, bytes.NewReader(manifest), custom); err != nil {
				t.Fatalf("add target file: %v", err)
			}
			hashOnly := sha([]byte("elsewhere"))
			if _, err := r.AddTarget("targets", "ghcr.io/acme/app:1.4.2", 9, hashOnly, nil); err != nil {
				t.Fatalf("add target: %v", err)
			}
			res := mustPublish(t, r)
			if res.Roles["targets"] != 2 || res.Snapshot != 2 || res.Timestamp != 2 {
				t.Errorf("publish result = %+v, want targets, snapshot and timestamp at version 2", res)
			}

			for _, c := range []*tufClient{newHTTPClient(t, repoDir), newDirClient(t, repoDir)} {
				t.Run(c.transfer, func(t *testing.T) {
					tf, data, err := c.get(name, true)
					if err != nil {
						t.Fatalf("go-tuf client: %v", err)
					}
					if !bytes.Equal(data, manifest) || tf.Length != int64(len(manifest)) || tf.Hashes["sha256"].String() != sha(manifest) {
						t.Errorf("target = len %d sha256 %s data %q; want the manifest", tf.Length, tf.Hashes["sha256"], data)
					}
					var got map[string]string
					if tf.Custom == nil || json.Unmarshal(*tf.Custom, &got) != nil || got["mediaType"] != custom["mediaType"] {
						t.Errorf("custom = %v, want mediaType", tf.Custom)
					}
					tf, _, err = c.get("ghcr.io/acme/app:1.4.2", false)
					if err != nil {
						t.Fatalf("go-tuf client, hash-only target: %v", err)
					}
					if tf.Length != 9 || tf.Hashes["sha256"].String() != hashOnly {
						t.Errorf("hash-only target = %d %s", tf.Length, tf.Hashes["sha256"])
					}
					if _, _, err := c.get("docker.io/library/alpine:3.21", false); err == nil {
						t.Error("unknown target found")
					}
				})
			}

			// The consistent-snapshot layout, by name.
			for _, f := range []string{"metadata/1.root.json", "metadata/1.targets.json", "metadata/2.targets.json",
				"metadata/2.snapshot.json", "metadata/timestamp.json",
				"targets/docker.io/library/" + sha(manifest) + ".alpine:3.20"} {
				if _, err := os.Stat(filepath.Join(repoDir, f)); err != nil {
					t.Errorf("layout: %v", err)
				}
			}
			var root metadata.Metadata[metadata.RootType]
			if _, err := root.FromFile(r.RootPath()); err != nil || !root.Signed.ConsistentSnapshot {
				t.Errorf("root: consistent snapshots off or unreadable (%v)", err)
			}
			for id, k := range root.Signed.Keys {
				want := map[string]string{publish.KeyEd25519: "ed25519", publish.KeyECDSA: "ecdsa-sha2-nistp256", publish.KeyRSA: "rsassa-pss-sha256"}[keyType]
				if k.Scheme != want {
					t.Errorf("key %s scheme %s, want %s", id, k.Scheme, want)
				}
			}
		})
	}
}

// TestEditsPersistAcrossOpen is what the CLI relies on: add in one process,
// add in another, publish in a third.
func TestEditsPersistAcrossOpen(t *testing.T) {
	_, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	for _, name := range []string{"example.com/a:1", "example.com/b:1"} {
		r, err := publish.Open(repoDir, "", publish.Options{})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if _, err := r.AddTargetFile("", name, strings.NewReader(name), nil); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	r, err := publish.Open(repoDir, keysDir, publish.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if p, err := r.Pending(); err != nil || len(p) != 1 || p[0] != "targets" {
		t.Errorf("pending = %v, %v; want [targets]", p, err)
	}
	mustPublish(t, r)
	if p, err := r.Pending(); err != nil || len(p) != 0 {
		t.Errorf("pending after publish = %v, %v; want none", p, err)
	}
	c := newHTTPClient(t, repoDir)
	for _, name := range []string{"example.com/a:1", "example.com/b:1"} {
		if _, data, err := c.get(name, true); err != nil || string(data) != name {
			t.Errorf("%s: %q, %v", name, data, err)
		}
	}
}

func TestRemoveTarget(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	for _, n := range []string{"example.com/app:1", "example.com/app:2"} {
		if _, err := r.AddTargetFile("", n, strings.NewReader(n), nil); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(t, r)
	c := newHTTPClient(t, repoDir)
	if _, _, err := c.get("example.com/app:1", false); err != nil {
		t.Fatalf("before removal: %v", err)
	}
	from, err := r.RemoveTarget("", "example.com/app:1")
	if err != nil || len(from) != 1 || from[0] != "targets" {
		t.Fatalf("remove = %v, %v", from, err)
	}
	if _, err := r.RemoveTarget("", "example.com/app:1"); err == nil {
		t.Error("removing a missing target succeeded")
	}
	// Not published yet: a client still sees it.
	if _, _, err := c.get("example.com/app:1", false); err != nil {
		t.Fatalf("removal visible before publish: %v", err)
	}
	mustPublish(t, r)
	if _, _, err := c.get("example.com/app:1", false); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("removed target after publish: err = %v, want not found", err)
	}
	if _, _, err := c.get("example.com/app:2", true); err != nil {
		t.Errorf("other target after publish: %v", err)
	}
}

func TestTimestampBumpsOnlyTimestamp(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	if _, err := r.AddTargetFile("", "example.com/app:1", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	before := mustPublish(t, r)
	c := newHTTPClient(t, repoDir)
	if _, _, err := c.get("example.com/app:1", false); err != nil {
		t.Fatal(err)
	}
	snapshot := readFiles(t, filepath.Join(repoDir, "metadata"))
	res, err := r.Timestamp(context.Background())
	if err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	if res.Timestamp != before.Timestamp+1 || res.Snapshot != before.Snapshot || len(res.Roles) != 0 {
		t.Errorf("timestamp result %+v after %+v: want only the timestamp version bumped", res, before)
	}
	after := readFiles(t, filepath.Join(repoDir, "metadata"))
	for name, b := range after {
		if name != "timestamp.json" && !bytes.Equal(b, snapshot[name]) {
			t.Errorf("%s changed or appeared", name)
		}
	}
	if bytes.Equal(after["timestamp.json"], snapshot["timestamp.json"]) || len(after) != len(snapshot) {
		t.Errorf("timestamp.json unchanged or files added (%d -> %d)", len(snapshot), len(after))
	}
	if _, _, err := c.get("example.com/app:1", false); err != nil {
		t.Errorf("client after timestamp: %v", err)
	}
}

// TestPublishSignsOnlyWhatChanged: an unchanged role keeps its version, one
// past half its lifetime is renewed.
func TestPublishSignsOnlyWhatChanged(t *testing.T) {
	now := time.Now()
	r, repoDir, _ := newRepo(t, publish.InitOptions{Now: func() time.Time { return now }})
	res := mustPublish(t, r)
	if _, ok := res.Roles["targets"]; ok {
		t.Errorf("unchanged targets re-signed: %+v", res)
	}
	if res.Snapshot != 2 || res.Timestamp != 2 {
		t.Errorf("snapshot/timestamp not bumped: %+v", res)
	}
	now = now.Add(46 * 24 * time.Hour) // targets expire after 90 days
	res = mustPublish(t, r)
	if res.Roles["targets"] != 2 {
		t.Errorf("targets past half its lifetime not renewed: %+v", res)
	}
	var tg metadata.Metadata[metadata.TargetsType]
	if _, err := tg.FromFile(filepath.Join(repoDir, "metadata", "2.targets.json")); err != nil {
		t.Fatal(err)
	}
	if want := now.Add(90 * 24 * time.Hour).UTC().Truncate(time.Second); !tg.Signed.Expires.Equal(want) {
		t.Errorf("targets expires %s, want %s", tg.Signed.Expires, want)
	}
}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestCustomExpiry(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	_, repoDir, _ := newRepo(t, publish.InitOptions{Now: func() time.Time { return now },
		Expiry: map[string]time.Duration{"timestamp": time.Hour, "targets": 10 * 24 * time.Hour}})
	var ts metadata.Metadata[metadata.TimestampType]
	if _, err := ts.FromFile(filepath.Join(repoDir, "metadata", "timestamp.json")); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 4, 4, 5, 0, time.UTC); !ts.Signed.Expires.Equal(want) {
		t.Errorf("timestamp expires %s, want %s", ts.Signed.Expires, want)
	}
	var tg metadata.Metadata[metadata.TargetsType]
	if _, err := tg.FromFile(filepath.Join(repoDir, "metadata", "1.targets.json")); err != nil {
		t.Fatal(err)
	}
	if want := now.Add(240 * time.Hour).Truncate(time.Second); !tg.Signed.Expires.Equal(want) {
		t.Errorf("targets expires %s, want %s", tg.Signed.Expires, want)
	}
}

func TestTargetNameValidation(t *testing.T) {
	r, _, _ := newRepo(t, publish.InitOptions{})
	h := sha([]byte("x"))
	for _, tc := range []struct {
		name, hash string
		ok         bool
	}{
		{"docker.io/library/alpine:3.20", h, true},
		{"top-level-name", h, true},
		{"", h, false},
		{"/abs/path:1", h, false},
		{"a//b:1", h, false},
		{"a/../b:1", h, false},
		{"a/b:1 ", h, false},
		{"a/b:1?x", h, false},
		{"a/b:1#x", h, false},
		{`a\b:1`, h, false},
		{"a/b:1", "xyz", false},
		{"a/b:1", strings.ToUpper(h), false},
	} {
		_, err := r.AddTarget("", tc.name, 1, tc.hash, nil)
		if (err == nil) != tc.ok {
			t.Errorf("AddTarget(%q, %q) err = %v, want ok=%v", tc.name, tc.hash, err, tc.ok)
		}
	}
	if _, err := r.AddTarget("no-such-role", "a/b:1", 1, h, nil); err == nil || !strings.Contains(err.Error(), "no role") {
		t.Errorf("unknown role: %v", err)
	}
}

// TestConcurrentEditors: separate Repo values (as separate processes would
// have) add targets and publish at the same time; nothing is lost and the
// result verifies.
func TestConcurrentEditors(t *testing.T) {
	_, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	const n = 8
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := publish.Open(repoDir, keysDir, publish.Options{})
			if err != nil {
				errs <- err
				return
			}
			name := fmt.Sprintf("example.com/app:%d", i)
			if _, err := r.AddTargetFile("", name, strings.NewReader(name), nil); err != nil {
				errs <- err
			}
			if _, err := r.Publish(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r, err := publish.Open(repoDir, keysDir, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Targets()); got != n {
		t.Errorf("%d targets after %d concurrent adds", got, n)
	}
	c := newHTTPClient(t, repoDir)
	for i := range n {
		if _, _, err := c.get(fmt.Sprintf("example.com/app:%d", i), true); err != nil {
			t.Errorf("client: %v", err)
		}
	}
}
