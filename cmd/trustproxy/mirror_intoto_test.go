package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The in-toto layout, keys and links policy read online cross with the
// export, and the offline side's rule that requires in-toto evaluates them
// (nothing executed); without them the import is refused.
func TestMirrorInToto(t *testing.T) {
	m := newMirrorSides(t)
	good := m.up.PushRandomImage(t, "acme/app:1.0", 1024, 2, types.OCIManifestSchema1)
	gd, _ := good.Digest()
	layoutPath, linkDir, ownerPub := writeSupplyChain(t, filepath.Join(m.dir, "ops"), gd.Hex)
	m.trust(t, "add", m.up.Host+"/acme/app:1.0", "--repo", m.repo, "--keys", m.keys, "--insecure", "--name", "up/acme/app",
		"--in-toto-layout", layoutPath, "--in-toto-links", linkDir, "--in-toto-pubkey", ownerPub, "--publish")
	requireInToto := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "trust: corp}", "trust: corp, require: [tuf, in-toto]}", 1)
		writeFile(t, p, s)
	}
	requireInToto(m.online)

	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")
	var carried []string
	filepath.WalkDir(filepath.Join(exp, "tuf", "corp", "targets"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			carried = append(carried, filepath.Base(p))
		}
		return nil
	})
	if len(carried) < 3 {
		t.Fatalf("in-toto target files carried: %v; want the layout, its key and the links", carried)
	}

	stripped := filepath.Join(t.TempDir(), "stripped")
	copyTree(t, exp, stripped)
	os.RemoveAll(filepath.Join(stripped, "tuf", "corp", "targets"))
	cfg, _ := m.offline(t)
	requireInToto(cfg)
	if out, err := runMirrorArgs(t, "import", "--config", cfg, stripped); err == nil || !strings.Contains(err.Error(), "in-toto") {
		t.Fatalf("import without the in-toto files: %v\n%s", err, out)
	}
	if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(b))
	if got, err := crane.Digest(addr+"/up/acme/app:1.0", crane.Insecure); err != nil || got != gd.String() {
		t.Fatalf("in-toto verified pull through the offline proxy = %s, %v; want %s", got, err, gd)
	}
}
