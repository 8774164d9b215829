package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// registriesConf is the registries.conf CLIENTS.md documents for podman,
// CRI-O, buildah and skopeo: upstream.test is rewritten to the proxy
// (location, no fallback), and mirrored.test lists the proxy as a mirror,
// which podman falls back from.
func registriesConf(proxy string) string {
	return fmt.Sprintf(`unqualified-search-registries = []

[[registry]]
prefix = "upstream.test"
location = "%[1]s/upstream.test"
insecure = true

[[registry]]
prefix = "mirrored.test"
location = "mirrored.test"
[[registry.mirror]]
location = "%[1]s/upstream.test"
insecure = true
`, proxy)
}

func writeRegistriesConf(t *testing.T, proxy string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(path, []byte(registriesConf(proxy)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPodman pulls with podman as root, without a daemon, into private vfs
// storage, by names that registries.conf sends through the proxy.
func TestPodman(t *testing.T) {
	s := needStack(t)
	needTool(t, "podman")
	needRoot(t)
	dir := shortTempDir(t, "podman")
	env := []string{"CONTAINERS_REGISTRIES_CONF=" + writeRegistriesConf(t, s.proxy)}
	podman := func(args ...string) []string { return podmanArgs(dir, args...) }
	digestOf := func(t *testing.T, ref string) string {
		return strings.TrimSpace(mustTool(t, env, "podman", podman("image", "inspect", "--format", "{{.Digest}}", ref)...))
	}
	pullDigest := func(t *testing.T, ref string) string {
		mustTool(t, env, "podman", podman("pull", ref)...)
		return digestOf(t, ref)
	}

	t.Run("signed", func(t *testing.T) {
		if d := pullDigest(t, "upstream.test/acme/signed:1.0"); d != s.seed.signed {
			t.Fatalf("digest %s; want the signed %s", d, s.seed.signed)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		out, err := tool(t, env, "podman", podman("pull", "upstream.test/acme/unsigned:1.0")...)
		wantRefused(t, out, err, "denied: trustproxy: "+upstreamName+"/acme/unsigned:1.0", `rule "acme"`)
	})
	t.Run("re-pushed tag", func(t *testing.T) {
		if d := pullDigest(t, "upstream.test/acme/moved:1.0"); d != s.seed.moved {
			t.Fatalf("digest %s; want the signed %s, not the re-pushed %s", d, s.seed.moved, s.seed.movedUpstream)
		}
	})
	t.Run("multi-platform index", func(t *testing.T) {
		if d := pullDigest(t, "upstream.test/acme/multi:1.0"); d != s.seed.multi {
			t.Fatalf("digest %s; want the signed index %s", d, s.seed.multi)
		}
	})
	t.Run("prefixed reference", func(t *testing.T) {
		ref := s.proxyRef("acme/signed:1.0")
		mustTool(t, env, "podman", podman("pull", "--tls-verify=false", ref)...)
		if d := digestOf(t, ref); d != s.seed.signed {
			t.Fatalf("digest %s; want the signed %s", d, s.seed.signed)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		if d := pullDigest(t, "mirrored.test/acme/signed:1.0"); d != s.seed.signed {
			t.Fatalf("digest %s; want the signed %s", d, s.seed.signed)
		}
		// After the mirror's denial podman tries the registry itself
		// (here a closed port, see noEgress): a mirror entry does not
		// enforce; a location rewrite does.
		out, err := tool(t, env, "podman", podman("pull", "mirrored.test/acme/unsigned:1.0")...)
		wantRefused(t, out, err, "Mirrors also failed", "denied: trustproxy: "+upstreamName+"/acme/unsigned:1.0",
			"pinging container registry mirrored.test")
	})
}

// podmanArgs runs podman as root without a daemon in private vfs storage
// under dir.
func podmanArgs(dir string, args ...string) []string {
	return append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs",
		"--events-backend", "none", "--cgroup-manager", "cgroupfs"}, args...)
}
