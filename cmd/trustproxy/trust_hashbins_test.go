package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// TestTrustHashBins drives a hash-bin repository through the CLI: init
// --hash-bins, a bulk add-targets from a JSON-lines list, one more target,
// a removal; each publish re-signs only what changed, and go-tuf's updater
// finds the targets in their bins.
func TestTrustHashBins(t *testing.T) {
	base := t.TempDir()
	vars := map[string]string{"repo": filepath.Join(base, "repo"), "keys": filepath.Join(base, "keys"),
		"list": filepath.Join(base, "tags.jsonl"), "one": filepath.Join(base, "one.jsonl")}
	line := func(name string) string {
		sum := sha256.Sum256([]byte(name))
		return fmt.Sprintf(`{"name":%q,"digest":"sha256:%s","length":%d,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`+"\n",
			name, hex.EncodeToString(sum[:]), len(name))
	}
	var list strings.Builder
	for i := range 200 {
		list.WriteString(line(fmt.Sprintf("ghcr.io/acme/app%d:v%d", i%10, i)))
	}
	if err := os.WriteFile(vars["list"], []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars["one"], []byte(line("ghcr.io/acme/new:1")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		args []string
		want []string
	}{
		{[]string{"init", "--repo", "{repo}", "--keys", "{keys}", "--hash-bins", "32"}, []string{"32 hash bins"}},
		{[]string{"add-targets", "{list}", "--repo", "{repo}"}, []string{"added 200 target(s) to ", "role(s); staged"}},
		{[]string{"list", "--repo", "{repo}"}, []string{"bins-", "ghcr.io/acme/app3:v13", "200 target(s) in ", "(33 roles in all); unpublished changes in bins-"}},
		{[]string{"publish", "--repo", "{repo}", "--keys", "{keys}"}, []string{"hash bins, snapshot v2, timestamp v2"}},
		{[]string{"add-targets", "{one}", "--repo", "{repo}", "--keys", "{keys}", "--publish"}, []string{"added 1 target(s) to 1 role(s); published (hash bin bins-", "snapshot v3"}},
		{[]string{"remove", "ghcr.io/acme/app0:v0", "--repo", "{repo}", "--keys", "{keys}", "--publish"}, []string{"removed 1 target(s) from role(s) bins-", "published (hash bin bins-", "snapshot v4"}},
		{[]string{"list", "--repo", "{repo}"}, []string{"200 target(s) in ", "all published"}},
	} {
		out, errOut, err := runTrustArgs(t, vars, st.args...)
		if err != nil {
			t.Fatalf("trust %s: %v\n%s", strings.Join(st.args, " "), err, errOut)
		}
		for _, w := range st.want {
			if !strings.Contains(out, w) {
				t.Errorf("trust %s: output lacks %q:\n%s", strings.Join(st.args, " "), w, out)
			}
		}
	}
	// The delegation was published with targets v1; target edits never
	// re-sign targets.
	if _, err := os.Stat(filepath.Join(vars["repo"], "metadata", "2.targets.json")); err == nil {
		t.Fatal("targets was re-signed by a target edit")
	}

	up := refreshedUpdater(t, vars["repo"])
	for _, name := range []string{"ghcr.io/acme/app3:v13", "ghcr.io/acme/app9:v199", "ghcr.io/acme/new:1"} {
		tf, err := up.GetTargetInfo(name)
		sum := sha256.Sum256([]byte(name))
		if err != nil || tf.Hashes["sha256"].String() != hex.EncodeToString(sum[:]) {
			t.Errorf("go-tuf: %s: %v", name, err)
		}
	}
	if _, err := up.GetTargetInfo("ghcr.io/acme/app0:v0"); err == nil {
		t.Error("removed target still published")
	}

	// trustproxy's own verifier reads the same repository as a directory.
	tf, err := trustfetch.Open(t.Context(), trustfetch.Config{Name: "bins", Metadata: filepath.Join(vars["repo"], "metadata"),
		Root: filepath.Join(vars["repo"], "metadata", "1.root.json"), StateDir: t.TempDir()}, trustfetch.Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("trustfetch: %v", err)
	}
	defer tf.Close()
	ix, err := tf.Index()
	if err != nil {
		t.Fatalf("trustfetch index: %v", err)
	}
	for _, name := range []string{"ghcr.io/acme/app3:v13", "ghcr.io/acme/new:1"} {
		sum := sha256.Sum256([]byte(name))
		if tg, ok := ix.Lookup(name); !ok || tg.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(tg.Role, "bins-") {
			t.Errorf("trustfetch: %s: %+v, %v", name, tg, ok)
		}
	}
	if _, ok := ix.Lookup("ghcr.io/acme/app0:v0"); ok {
		t.Error("trustfetch: removed target still listed")
	}
}
