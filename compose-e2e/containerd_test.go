package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostsTOML is the hosts.toml CLIENTS.md documents: the proxy is both the
// mirror host and the server, so no request ever falls back to the real
// registry (containerd tries the next host, then server, after a 403).
func hostsTOML(proxy string) string {
	return fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, proxy)
}

// TestContainerd pulls with ctr through a hosts.toml mirror from a private
// containerd. containerd names the registry with ?ns=mirror.test; trustproxy
// routes by it to its non-default upstream mirror.test, which the access
// log shows (without ?ns= the path would go to the default upstream).
func TestContainerd(t *testing.T) {
	s := needStack(t)
	sock := startContainerd(t)
	hostsDir := filepath.Join(shortTempDir(t, "certs.d"), "certs.d")
	if err := os.MkdirAll(filepath.Join(hostsDir, mirrorName), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostsDir, mirrorName, "hosts.toml"), []byte(hostsTOML(s.proxy)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctr := func(args ...string) []string { return append([]string{"-a", sock, "-n", "e2e"}, args...) }
	pull := func(ref string) (string, error) {
		return tool(t, nil, "ctr", ctr("images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", ref)...)
	}
	digestOf := func(t *testing.T, ref string) string { return ctrDigest(t, sock, "e2e", ref) }
	start := time.Now()

	t.Run("signed", func(t *testing.T) {
		ref := mirrorName + "/acme/signed:1.0"
		if out, err := pull(ref); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if d := digestOf(t, ref); d != s.seed.signed {
			t.Fatalf("%s: digest %s; want the signed %s", ref, d, s.seed.signed)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		// containerd resolves with HEAD, whose 403 has no body: ctr shows
		// the status only; the reason is in trustproxy's log.
		out, err := pull(mirrorName + "/acme/unsigned:1.0")
		wantRefused(t, out, err, "403 Forbidden")
	})
	t.Run("re-pushed tag", func(t *testing.T) {
		ref := mirrorName + "/acme/moved:1.0"
		if out, err := pull(ref); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if d := digestOf(t, ref); d != s.seed.moved {
			t.Fatalf("%s: digest %s; want the signed %s, not the re-pushed %s", ref, d, s.seed.moved, s.seed.movedUpstream)
		}
	})
	t.Run("multi-platform index", func(t *testing.T) {
		ref := mirrorName + "/acme/multi:1.0"
		if out, err := pull(ref); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if d := digestOf(t, ref); d != s.seed.multi {
			t.Fatalf("%s: digest %s; want the signed index %s", ref, d, s.seed.multi)
		}
	})
	// Why CLIENTS.md insists on server = the proxy: with the registry as
	// server, containerd goes on to it after the proxy's 403 and the
	// unsigned image arrives.
	t.Run("server = registry bypasses denials", func(t *testing.T) {
		dir := filepath.Join(hostsDir, upstreamName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bypass := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", s.registry, s.proxy)
		if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(bypass), 0o644); err != nil {
			t.Fatal(err)
		}
		ref := upstreamName + "/acme/unsigned:1.0"
		if out, err := pull(ref); err != nil {
			t.Fatalf("with the registry as server the pull should fall back to it: %v\n%s", err, out)
		}
		if d := digestOf(t, ref); d != s.seed.unsigned {
			t.Fatalf("%s: digest %s; want the unsigned %s straight from the registry", ref, d, s.seed.unsigned)
		}
	})
	t.Run("requests carry ?ns=", func(t *testing.T) {
		var seen, denied, bypassDenied bool
		for _, l := range s.proxyRequests(t, start) {
			if l.Path == "/v2/acme/unsigned/manifests/1.0" && l.Upstream == upstreamName && l.Status == 403 {
				bypassDenied = true // the proxy was asked first, and said no
			}
			if l.Path == "/v2/acme/signed/manifests/1.0" && l.Upstream == mirrorName && l.Decision == "allow" {
				seen = true
			}
			if l.Path == "/v2/acme/unsigned/manifests/1.0" && l.Upstream == mirrorName && l.Status == 403 {
				denied = true
			}
		}
		if !seen || !denied || !bypassDenied {
			t.Fatalf("trustproxy's log lacks un-prefixed requests routed by ?ns=: acme/signed served from %s (%v), acme/unsigned denied from %s (%v) and from %s (%v)",
				mirrorName, seen, mirrorName, denied, upstreamName, bypassDenied)
		}
	})
}

// ctrDigest reads ctr's image list in namespace ns (REF TYPE DIGEST SIZE
// PLATFORMS LABELS) and returns ref's digest.
func ctrDigest(t *testing.T, sock, ns, ref string) string {
	t.Helper()
	out := mustTool(t, nil, "ctr", "-a", sock, "-n", ns, "images", "ls")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == ref {
			return f[2]
		}
	}
	t.Fatalf("ctr images ls has no %s:\n%s", ref, out)
	return ""
}
