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
		"cache": {"proxy", "policy", "trustfetch", "cmd"},
		// trustfetch/... covers trustfetch/notary: it may import trustfetch
		// (the Index it offers policy), nothing above.
		"trustfetch": {"proxy", "policy", "cache", "cmd"},
		"policy":     {"proxy", "cache", "cmd"},
		"proxy":      {"cmd"},
		// mirror exports through the proxy's HTTP face, never its code;
		// proxy/cnab (standalone) resolves bundles on import.
		"mirror": {"proxy", "cmd"},
		"access": {"proxy", "policy", "trustfetch", "cache", "cmd"},
		// impact compares outcomes the caller judges; it decides nothing.
		"impact": {"proxy", "policy", "cache", "trustfetch", "cmd"},
	}
	allowed := map[string]bool{"proxy/cnab": true}
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
			if allowed[rel] {
				continue
			}
			for _, b := range bad {
				if rel == b || strings.HasPrefix(rel, b+"/") {
					t.Errorf("package %s imports %s: imports must point downward (cmd → proxy → policy → trustfetch; cache and access standalone)", pkg, dep)
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

// The binary that ships in the image links no test code: no testing, no
// httptest, no test helpers (as go-containerregistry's
// cmd/crane/depcheck_test.go checks for crane), and none of the libraries
// only the tests' CNAB fixtures need.
func TestProductBinaryHasNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test=false", "./cmd/trustproxy").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps ./cmd/trustproxy listed only %d packages: %v", len(deps), deps)
	}
	for _, dep := range deps {
		bad := dep == "testing" || strings.HasPrefix(dep, "testing/") ||
			dep == "net/http/httptest" || strings.HasSuffix(dep, "/internal/httptest") ||
			strings.HasPrefix(dep, "github.com/trustproxy/trustproxy/internal/testenv") ||
			strings.HasPrefix(dep, "github.com/cnabio/cnab-to-oci") ||
			strings.Contains(dep, "/testutil") || strings.Contains(dep, "/testhelper")
		if bad {
			t.Errorf("cmd/trustproxy links %s: the product binary must not contain test code", dep)
		}
	}
}
