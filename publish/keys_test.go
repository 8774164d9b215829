package publish_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustproxy/trustproxy/publish"
)

func TestKeyFilesArePrivate(t *testing.T) {
	_, repoDir, keysDir := newRepo(t, publish.InitOptions{RootKeys: 3, RootThreshold: 2})
	var keys, pubs int
	err := filepath.WalkDir(keysDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: mode %04o, want 0700", path, fi.Mode().Perm())
			}
		case strings.HasSuffix(path, ".key"):
			keys++
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", path, fi.Mode().Perm())
			}
		case strings.HasSuffix(path, ".pub"):
			pubs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keys != 6 || pubs != 6 { // 3 root + targets + snapshot + timestamp
		t.Errorf("%d private and %d public key files, want 6 and 6", keys, pubs)
	}
	// Nothing secret in the served directory.
	_ = filepath.WalkDir(repoDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), "PRIVATE KEY") {
				t.Errorf("%s holds a private key", path)
			}
		}
		return nil
	})
}

func TestKeysInsideRepositoryRefused(t *testing.T) {
	base := t.TempDir()
	_, err := publish.Init(context.Background(), base, filepath.Join(base, "keys"), publish.InitOptions{})
	if err == nil || !strings.Contains(err.Error(), "inside the repository") {
		t.Errorf("init with keys inside the repository: %v", err)
	}
}

func TestInitRefusesExistingRepository(t *testing.T) {
	_, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	if _, err := publish.Init(context.Background(), repoDir, keysDir, publish.InitOptions{}); err == nil || !strings.Contains(err.Error(), "already a trust repository") {
		t.Errorf("second init: %v", err)
	}
	if _, err := publish.Open(t.TempDir(), "", publish.Options{}); err == nil || !strings.Contains(err.Error(), "not a trust repository") {
		t.Errorf("open of an empty directory: %v", err)
	}
}

// replaceKeys swaps every private key of role for a fresh, unrelated one.
func replaceKeys(t *testing.T, keysDir, role string) {
	t.Helper()
	dir := filepath.Join(keysDir, role)
	old, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWrongKeyFile(t *testing.T) {
	r, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	replaceKeys(t, keysDir, "targets")
	if _, err := r.AddTarget("", "example.com/app:1", 1, sha([]byte("x")), nil); err != nil {
		t.Fatal(err)
	}
	before := readFiles(t, filepath.Join(repoDir, "metadata"))
	_, err := r.Publish(context.Background())
	if err == nil {
		t.Fatal("publish with the wrong targets key succeeded")
	}
	for _, want := range []string{"sign targets", "need 1 signature", "other.key is not one of the role's keys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after := readFiles(t, filepath.Join(repoDir, "metadata"))
	if len(after) != len(before) || string(after["timestamp.json"]) != string(before["timestamp.json"]) {
		t.Error("a failed publish wrote files")
	}
	// Timestamp needs only the timestamp key, which is still right.
	if _, err := r.Timestamp(context.Background()); err != nil {
		t.Errorf("timestamp with a good timestamp key: %v", err)
	}
}

func TestMissingKeysDirectory(t *testing.T) {
	_, repoDir, _ := newRepo(t, publish.InitOptions{})
	r, err := publish.Open(repoDir, "", publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Timestamp(context.Background()); err == nil || !strings.Contains(err.Error(), "no keys directory") {
		t.Errorf("timestamp without keys: %v", err)
	}
}

func TestThresholdNotMet(t *testing.T) {
	r, repoDir, keysDir := newRepo(t, publish.InitOptions{RootKeys: 2, RootThreshold: 2})
	// The 2-of-2 root verifies with the go-tuf client.
	if _, _, err := newHTTPClient(t, repoDir).get("nothing:1", false); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("client on a 2-of-2 root: %v", err)
	}
	keys, _ := filepath.Glob(filepath.Join(keysDir, "root", "*.key"))
	if len(keys) != 2 {
		t.Fatalf("%d root keys, want 2", len(keys))
	}
	if err := os.Remove(keys[0]); err != nil {
		t.Fatal(err)
	}
	_, err := r.RotateKeys(context.Background(), "timestamp", publish.RotateOptions{})
	if err == nil || !strings.Contains(err.Error(), "sign root: need 2 signature(s)") || !strings.Contains(err.Error(), "found 1 matching") {
		t.Errorf("rotation with one of two root keys: %v", err)
	}
	if r.RootVersion() != 1 {
		t.Errorf("root version %d after a failed rotation", r.RootVersion())
	}
}

func TestGroupReadableKeyRefused(t *testing.T) {
	r, _, keysDir := newRepo(t, publish.InitOptions{})
	keys, _ := filepath.Glob(filepath.Join(keysDir, "timestamp", "*.key"))
	if err := os.Chmod(keys[0], 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Timestamp(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("timestamp with a group-readable key: %v", err)
	}
}

// TestRotateKeys: a client that trusted root v1 follows the rotation and
// accepts metadata signed by the new keys.
func TestRotateKeys(t *testing.T) {
	r, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	if _, err := r.AddTargetFile("", "example.com/app:1", strings.NewReader("v1"), nil); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r)
	c := newHTTPClient(t, repoDir)
	if _, _, err := c.get("example.com/app:1", false); err != nil {
		t.Fatal(err)
	}
	oldTargets, _ := filepath.Glob(filepath.Join(keysDir, "targets", "*.key"))

	for i, role := range []string{"root", "targets", "timestamp"} {
		res, err := r.RotateKeys(context.Background(), role, publish.RotateOptions{})
		if err != nil {
			t.Fatalf("rotate %s: %v", role, err)
		}
		if res.Root != int64(i+2) {
			t.Errorf("rotate %s: root version %d, want %d", role, res.Root, i+2)
		}
		if role == "targets" && res.Roles["targets"] == 0 {
			t.Errorf("rotate targets did not re-sign targets: %+v", res)
		}
		if _, data, err := c.get("example.com/app:1", true); err != nil || string(data) != "v1" {
			t.Fatalf("client after rotating %s: %q, %v", role, data, err)
		}
	}
	if _, err := os.Stat(filepath.Join(keysDir, "targets", "retired", filepath.Base(oldTargets[0]))); err != nil {
		t.Errorf("old targets key not retired: %v", err)
	}
	// A fresh client pinned to 1.root.json walks all rotations.
	if _, _, err := newDirClient(t, repoDir).get("example.com/app:1", true); err != nil {
		t.Errorf("fresh client: %v", err)
	}
	// And the repository still publishes with the new keys.
	r2, err := publish.Open(repoDir, keysDir, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.AddTargetFile("", "example.com/app:2", strings.NewReader("v2"), nil); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r2)
	if _, _, err := c.get("example.com/app:2", true); err != nil {
		t.Errorf("client after publishing with rotated keys: %v", err)
	}
}
