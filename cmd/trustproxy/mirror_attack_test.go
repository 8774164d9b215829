package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// snapshotTree maps every regular file under root (but the configuration)
// to its sha256: what "nothing loaded" is checked against.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, rerr := os.ReadFile(p)
		if rerr != nil {
			t.Fatal(rerr)
		}
		sum := sha256.Sum256(b)
		files[p] = hex.EncodeToString(sum[:])
		return nil
	})
	return files
}

// requireUnchanged fails unless root holds exactly the files of before.
func requireUnchanged(t *testing.T, root string, before map[string]string) {
	t.Helper()
	after := snapshotTree(t, root)
	if len(before) != len(after) {
		t.Fatalf("the refused import changed the offline side: %d files before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Fatalf("the refused import changed %s", p)
		}
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
}

func largestBlob(t *testing.T, exp string) string {
	t.Helper()
	var best string
	var size int64
	ents, _ := os.ReadDir(filepath.Join(exp, "blobs", "sha256"))
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Size() > size {
			best, size = filepath.Join(exp, "blobs", "sha256", e.Name()), fi.Size()
		}
	}
	return best
}

// TestMirrorImportRefusesAttacks: each tampered export is refused whole,
// with a message naming the first failure, and the offline side is left
// exactly as it was.
func TestMirrorImportRefusesAttacks(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1.0", 64<<10, 2, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "acme/unsigned:1.0", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	v1 := filepath.Join(m.dir, "v1")
	export(t, m, v1, "up/acme/app:1.0")
	tarball := filepath.Join(m.dir, "v1.tar")
	export(t, m, tarball, "up/acme/app:1.0")

	m.up.PushRandomImage(t, "acme/app:2.0", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:2.0")
	v2 := filepath.Join(m.dir, "v2")
	export(t, m, v2, "up/acme/app:1.0", "up/acme/app:2.0")

	attacker := filepath.Join(m.dir, "attacker")
	m.trust(t, "init", "--repo", attacker, "--keys", filepath.Join(m.dir, "attacker-keys"))
	m.trust(t, "add", m.up.Host+"/acme/app:1.0", "--repo", attacker, "--keys", filepath.Join(m.dir, "attacker-keys"),
		"--insecure", "--name", "up/acme/app", "--publish")

	for _, tc := range []struct {
		name   string
		before string // an export imported first
		tamper func(t *testing.T, exp string) string
		want   string
	}{
		{"flipped byte in a blob", "", func(t *testing.T, exp string) string {
			p := largestBlob(t, exp)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
			return exp
		}, "content hashes to"},
		{"metadata swapped for an older version", v2, func(t *testing.T, exp string) string {
			return exp // v1 after v2
		}, "trust corp: the export's TUF metadata does not verify"},
		{"an extra unsigned image in the layout", "", func(t *testing.T, exp string) string {
			out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false",
				"docker://"+m.up.Host+"/acme/unsigned:1.0", "oci:"+exp+":up/acme/unsigned:1.0").CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo: %v\n%s", err, out)
			}
			return exp
		}, `index.json lists`},
		{"an extra blob", "", func(t *testing.T, exp string) string {
			b := []byte("not vouched for")
			sum := sha256.Sum256(b)
			os.WriteFile(filepath.Join(exp, "blobs", "sha256", hex.EncodeToString(sum[:])), b, 0o644)
			return exp
		}, "no approved manifest references it"},
		{"a replaced root", "", func(t *testing.T, exp string) string {
			md := filepath.Join(exp, "tuf", "corp", "metadata")
			os.RemoveAll(md)
			copyTree(t, filepath.Join(attacker, "metadata"), md)
			return exp
		}, "does not verify against this side's pinned root"},
		{"a truncated tar", "", func(t *testing.T, _ string) string {
			b, _ := os.ReadFile(tarball)
			p := filepath.Join(t.TempDir(), "cut.tar")
			os.WriteFile(p, b[:len(b)*6/10], 0o644)
			return p
		}, "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, root := m.offline(t)
			if tc.before != "" {
				if out, err := runMirrorArgs(t, "import", "--config", cfg, tc.before); err != nil {
					t.Fatalf("import %s: %v\n%s", tc.before, err, out)
				}
			}
			exp := filepath.Join(t.TempDir(), "export")
			copyTree(t, v1, exp)
			src := tc.tamper(t, exp)
			before := snapshotTree(t, root)
			out, err := runMirrorArgs(t, "import", "--config", cfg, src)
			if err == nil || !strings.Contains(err.Error(), "import refused, nothing loaded") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import = %v\n%s\nwant a refusal naming %q", err, out, tc.want)
			}
			t.Logf("refused: %v", err)
			requireUnchanged(t, root, before)
		})
	}
}
