package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSkopeo inspects and copies through the proxy with skopeo, by prefixed
// references and through registries.conf.
func TestSkopeo(t *testing.T) {
	s := needStack(t)
	needTool(t, "skopeo")
	conf := writeRegistriesConf(t, s.proxy)
	inspect := func(t *testing.T, ref string) string {
		out := mustTool(t, nil, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref)
		return strings.TrimSpace(out)
	}

	t.Run("signed", func(t *testing.T) {
		if d := inspect(t, s.proxyRef("acme/signed:1.0")); d != s.seed.signed {
			t.Fatalf("digest %s; want the signed %s", d, s.seed.signed)
		}
		// A full copy: every blob through the proxy, the manifest kept
		// byte for byte (same digest in the OCI layout).
		layout := filepath.Join(t.TempDir(), "oci")
		mustTool(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+s.proxyRef("acme/signed:1.0"), "oci:"+layout+":signed")
		b, err := os.ReadFile(filepath.Join(layout, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		var idx struct {
			Manifests []struct{ Digest string } `json:"manifests"`
		}
		if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != s.seed.signed {
			t.Fatalf("OCI layout index %s (%v); want one manifest %s", b, err, s.seed.signed)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		out, err := tool(t, nil, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "docker://"+s.proxyRef("acme/unsigned:1.0"))
		wantRefused(t, out, err, "denied: trustproxy: "+upstreamName+"/acme/unsigned:1.0", `rule \"acme\"`)
	})
	t.Run("re-pushed tag", func(t *testing.T) {
		if d := inspect(t, s.proxyRef("acme/moved:1.0")); d != s.seed.moved {
			t.Fatalf("digest %s; want the signed %s, not the re-pushed %s", d, s.seed.moved, s.seed.movedUpstream)
		}
	})
	t.Run("multi-platform index", func(t *testing.T) {
		out := mustTool(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+s.proxyRef("acme/multi:1.0"))
		if !strings.Contains(out, s.seed.multiChild["arm64"]) || !strings.Contains(out, s.seed.multiChild["amd64"]) {
			t.Fatalf("raw index lacks the children %v:\n%s", s.seed.multiChild, out)
		}
		layout := filepath.Join(t.TempDir(), "oci")
		mustTool(t, nil, "skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+s.proxyRef("acme/multi:1.0"), "oci:"+layout+":multi")
	})
	t.Run("registries.conf", func(t *testing.T) {
		// --no-tags matters: skopeo lists tags from the name as written,
		// without registries.conf's rewrite.
		out := mustTool(t, nil, "skopeo", "--registries-conf", conf, "inspect", "--no-tags", "--format", "{{.Digest}}", "docker://upstream.test/acme/moved:1.0")
		if d := strings.TrimSpace(out); d != s.seed.moved {
			t.Fatalf("digest %s; want the signed %s", d, s.seed.moved)
		}
	})
}
