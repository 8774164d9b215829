package trustproxy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The design allows imports to point only downward:
// cmd → proxy → policy → trustfetch, with cache standalone. This test keeps
// it so, in the manner of go-containerregistry's depcheck tests.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/trustproxy/trustproxy/"
	forbidden := map[string][]string{
		"cache":      {"proxy", "policy", "trustfetch", "cmd"},
		"trustfetch": {"proxy", "policy", "cache", "cmd"},
		// trustfetch/notary is covered by trustfetch/...: it may import
		// trustfetch (the Index it offers policy), nothing above.
		"policy":     {"proxy", "cache", "cmd"},
		"proxy":      {"cmd"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-test=false", "./"+pkg+"/...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if !strings.HasPrefix(dep, mod) {
				continue
			}
			rel := strings.TrimPrefix(dep, mod)
			for _, b := range bad {
				if rel == b || strings.HasPrefix(rel, b+"/") {
					t.Errorf("package %s imports %s: imports must point downward (cmd → proxy → policy → trustfetch; cache standalone)", pkg, dep)
				}
			}
		}
	}
}

// The Notary v1 client (theupdateframework/notary v0.7.0, unmaintained) is
// confined to trustfetch/notary: every other package reaches Notary trust
// data only through it.
func TestNotaryConfined(t *testing.T) {
	const confined = "github.com/trustproxy/trustproxy/trustfetch/notary"
	out, err := exec.Command("go", "list", "-test", "-f", `{{.ImportPath}}|{{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		// "p [p.test]" is p compiled with its tests; "p_test" its external tests.
		base := strings.TrimSuffix(strings.SplitN(pkg, " ", 2)[0], "_test")
		if base == confined || strings.HasSuffix(base, ".test") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(imp, "github.com/theupdateframework/notary") {
				t.Errorf("package %s imports %s: only trustfetch/notary may use the Notary client", pkg, imp)
			}
		}
	}
}
