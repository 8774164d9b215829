package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func readMirrorIndex(t *testing.T, exp string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(exp, "trustproxy-mirror.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix map[string]any
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatal(err)
	}
	return ix
}

func blobCount(t *testing.T, exp string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(exp, "blobs", "sha256"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

// TestMirrorSince: an incremental export carries only what its base did
// not; it imports on a side that imported the base (twice: the second is a
// no-op), and is refused whole, naming the base, on a side that did not.
func TestMirrorSince(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1.0", 4096, 2, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	full := filepath.Join(m.dir, "full")
	export(t, m, full, "up/acme/app:1.0")
	fullBlobs := blobCount(t, full) // manifest, config, 2 layers

	// The trust data changes between the exports (2.0 is signed, a new
	// targets version), and 1.0 is exported again: nothing of it is carried.
	img2 := m.up.PushRandomImage(t, "acme/app:2.0", 4096, 3, types.OCIManifestSchema1)
	m.sign(t, "acme/app:2.0")
	inc := filepath.Join(m.dir, "inc.tar")
	export(t, m, inc, "--since="+full, "up/acme/app:1.0", "up/acme/app:2.0")
	incDir := filepath.Join(m.dir, "inc")
	os.MkdirAll(incDir, 0o755)
	if out, err := exec.Command("tar", "-xf", inc, "-C", incDir).CombinedOutput(); err != nil {
		t.Fatalf("untar: %v\n%s", err, out)
	}
	if got := blobCount(t, incDir); got != 5 { // 2.0: manifest, config, 3 layers
		t.Fatalf("incremental export holds %d blobs, want 5 (the full one held %d)", got, fullBlobs)
	}
	ix := readMirrorIndex(t, incDir)
	since, _ := ix["since"].(map[string]any)
	base, _ := since["digest"].(string)
	if !strings.HasPrefix(base, "sha256:") || len(ix["omitted"].([]any)) != 1 { // 1.0's manifest: its whole tree
		t.Fatalf("since = %v, omitted = %v", ix["since"], ix["omitted"])
	}

	// A side that never imported the base refuses it whole.
	cfg0, root0 := m.offline(t)
	before := snapshotTree(t, root0)
	out, err := runMirrorArgs(t, "import", "--config", cfg0, inc)
	if err == nil || !strings.Contains(err.Error(), "import refused, nothing loaded") ||
		!strings.Contains(err.Error(), base) || !strings.Contains(err.Error(), "which this side has not imported") {
		t.Fatalf("import without the base: %v\n%s", err, out)
	}
	if after := snapshotTree(t, root0); len(after) != len(before) {
		t.Fatalf("a refused import changed the offline side: %d files, was %d", len(after), len(before))
	}

	// A side whose cache lost a blob of the base since is refused too.
	cfgLost, rootLost := m.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfgLost, full); err != nil {
		t.Fatalf("import base: %v\n%s", err, out)
	}
	lost := filepath.Base(largestBlob(t, full)) // a layer of 1.0
	removed := 0
	filepath.WalkDir(filepath.Join(rootLost, "cache"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(p, lost) {
			os.RemoveAll(p)
			removed++
			return filepath.SkipDir
		}
		return nil
	})
	if removed == 0 {
		t.Fatalf("blob %s not found in the offline cache", lost)
	}
	if out, err := runMirrorArgs(t, "import", "--config", cfgLost, inc); err == nil ||
		!strings.Contains(err.Error(), "import refused, nothing loaded") || !strings.Contains(err.Error(), "not in this side's cache") {
		t.Fatalf("import with a lost base blob: %v\n%s", err, out)
	}

	// A side that imported the base takes it, then takes it again as a
	// no-op (the base itself, older trust data by now, would be a rollback).
	cfg, _ := m.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfg, full); err != nil {
		t.Fatalf("import base: %v\n%s", err, out)
	}
	out, err = runMirrorArgs(t, "import", "--config", cfg, inc)
	if err != nil || !strings.Contains(out, "imported 2 references: 4 blobs and 1 manifests added") || !strings.Contains(out, "4 held already from the base export") {
		t.Fatalf("incremental import: %v\n%s", err, out)
	}
	if out, err := runMirrorArgs(t, "import", "--config", cfg, inc); err != nil || !strings.Contains(out, "already imported: nothing changed") {
		t.Fatalf("import again: %v\n%s", err, out)
	}

	// A chain: an export since the incremental tar carries nothing new.
	again := filepath.Join(m.dir, "again")
	export(t, m, again, "--since="+inc, "up/acme/app:2.0")
	if got := blobCount(t, again); got != 0 {
		t.Fatalf("export since the incremental one holds %d blobs, want 0", got)
	}
	if out, err := runMirrorArgs(t, "import", "--config", cfg, again); err != nil || !strings.Contains(out, "already imported: nothing changed") {
		t.Fatalf("chained import: %v\n%s", err, out)
	}

	b, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(b))
	want, _ := img2.Digest()
	if got, err := crane.Digest(addr+"/up/acme/app:2.0", crane.Insecure); err != nil || got != want.String() {
		t.Fatalf("2.0 through the offline proxy = %s, %v; want %s", got, err, want)
	}
	img, err := crane.Pull(addr+"/up/acme/app:1.0", crane.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.RawManifest(); err != nil {
		t.Fatalf("1.0 through the offline proxy: %v", err)
	}
}
