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
