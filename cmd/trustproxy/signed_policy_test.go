package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSignedPolicyReachesTwoProxies publishes the rules as a TUF target
// with trustproxy's publisher and runs two real proxies on separate state
// directories that take their rules from it: a new version reaches both
// without a restart, its version is in every audit line, and a target whose
// bytes do not match the signed hash is refused with the last verified
// policy still in force.
func TestSignedPolicyReachesTwoProxies(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "other/app:1", 512, 1, types.OCIManifestSchema1)
	policyFile := filepath.Join(m.dir, "prod-policy.yaml")
	publishPolicy := func(rules string) {
		t.Helper()
		writeFile(t, policyFile, rules)
		m.trust(t, "add-file", "policy/prod.yaml", policyFile, "--repo", m.repo, "--keys", m.keys, "--publish")
	}
	publishPolicy("rules:\n  - {name: acme-allowed, match: \"up/acme/**\", mode: allow}\n")

	// What the server published for v1, to roll it back to later.
	v1Metadata := filepath.Join(m.dir, "v1-metadata")
	if err := os.CopyFS(v1Metadata, os.DirFS(filepath.Join(m.repo, "metadata"))); err != nil {
		t.Fatal(err)
	}

	var proxies []*reloadEnv
	for i := range 2 {
		// The second opens trust as serve does: in the background, with
		// nothing persisted yet.
		var asServe func(*fileConfig)
		if i == 1 {
			asServe = func(c *fileConfig) { c.backgroundTrust = true }
		}
		proxies = append(proxies, startReloadableAs(t, m.up.URL, fmt.Sprintf(`upstreams: [{name: up, url: %q}]
storage: {inmemory: {}}
log: {level: warn}
state: %q
trust: {corp: {metadata: %q, root: %q, refresh: 1s}}
policy: {from: {trust: corp, target: policy/prod.yaml}}
`, m.up.URL, filepath.Join(m.dir, fmt.Sprintf("state-%d", i)), filepath.Join(m.repo, "metadata"), m.rootPath()), 0, asServe))
	}
	acme := "/v2/up/acme/app/manifests/1"
	for i, p := range proxies {
		if code, body, _ := p.get(acme); code != 200 {
			t.Fatalf("proxy %d under signed policy v1: %d %s", i, code, body)
		}
		if v := p.in.policy.Version(); !strings.HasPrefix(v, "policy/prod.yaml@targets-v") {
			t.Fatalf("proxy %d policy version %q does not name the signed target", i, v)
		}
	}
	v1 := proxies[0].in.policy.Version()
	if v := proxies[1].in.policy.Version(); v != v1 {
		t.Fatalf("replicas name the same signed policy differently: %q, %q", v1, v)
	}

	publishPolicy("rules:\n  - {name: only-other, match: \"up/other/**\", mode: allow}\n")
	for i, p := range proxies {
		waitUntil(t, fmt.Sprintf("proxy %d to deny under signed policy v2", i), func() bool {
			code, _, _ := p.get(acme)
			return code == 403
		})
		if code, body, _ := p.get("/v2/up/other/app/manifests/1"); code != 200 {
			t.Fatalf("proxy %d under v2: other: %d %s", i, code, body)
		}
		if gen, err := p.status(); gen != 2 || err != nil {
			t.Fatalf("proxy %d: generation %d, last reload error %v; want one reload", i, gen, err)
		}
	}
	v2 := proxies[0].in.policy.Version()
	if v2 == v1 {
		t.Fatalf("policy version did not change: %q", v2)
	}
	// explain reads the signed rules too.
	if code, out, errOut := runPolicy(t, "explain", "--config", proxies[0].path, "up/acme/app:1"); code != 0 ||
		!strings.Contains(out, "only-other") || !strings.Contains(out, v2) || !strings.Contains(out, "decision: deny") {
		t.Fatalf("explain under signed v2: exit %d\n%s%s", code, out, errOut)
	}

	// A signed file is validated as the local rules are: a misspelt key
	// is refused, v2 stays.
	publishPolicy("rulez:\n  - {name: acme-allowed, match: \"up/acme/**\", mode: allow}\n")
	for i, p := range proxies {
		waitUntil(t, fmt.Sprintf("proxy %d to refuse the misspelt policy", i), func() bool {
			_, err := p.status()
			return err != nil && strings.Contains(err.Error(), "rulez")
		})
		if code, body, _ := p.get(acme); code != 403 {
			t.Fatalf("proxy %d after misspelt policy: %d %s; v2 must stay in force", i, code, body)
		}
	}

	// v3 allows acme again, but its bytes on the server are not the
	// signed ones: refused, v2 stays.
	publishPolicy("rules:\n  - {name: acme-again, match: \"up/acme/**\", mode: allow}\n")
	stored, err := filepath.Glob(filepath.Join(m.repo, "targets", "policy", "*.prod.yaml"))
	if err != nil || len(stored) != 4 {
		t.Fatalf("stored policy targets: %v %v", stored, err)
	}
	for _, s := range stored {
		if b, _ := os.ReadFile(s); strings.Contains(string(b), "acme-again") {
			writeFile(t, s, strings.Replace(string(b), "acme-again", "acme-forge", 1))
		}
	}
	for i, p := range proxies {
		waitUntil(t, fmt.Sprintf("proxy %d to refuse the forged v3", i), func() bool {
			_, err := p.status()
			return err != nil && !strings.Contains(err.Error(), "rulez")
		})
		if _, err := p.status(); !strings.Contains(err.Error(), "content has sha256") {
			t.Fatalf("proxy %d refused v3 for another reason: %v", i, err)
		}
		if code, body, _ := p.get(acme); code != 403 {
			t.Fatalf("proxy %d after forged v3: %d %s; v2 must stay in force", i, code, body)
		}
		if v := p.in.policy.Version(); v != v2 {
			t.Fatalf("proxy %d policy version %q after forged v3, want %q", i, v, v2)
		}
		if n := testutil.ToFloat64(p.in.status.metrics.reloads.WithLabelValues("failure")); n != 2 {
			t.Fatalf("proxy %d: %v failed reloads, want 2", i, n)
		}
		if _, ready, _ := p.get("/readyz"); !strings.Contains(ready, "refused") || !strings.Contains(ready, v2) {
			t.Fatalf("proxy %d /readyz:\n%s", i, ready)
		}
	}

	// The server rolls back to v1's metadata (allow acme): TUF refuses the
	// older versions, so no proxy reloads and v2 stays.
	metaDir := filepath.Join(m.repo, "metadata")
	if err := os.RemoveAll(metaDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(metaDir, os.DirFS(v1Metadata)); err != nil {
		t.Fatal(err)
	}
	for i, p := range proxies {
		_, before, _ := p.get("/metrics")
		waitUntil(t, fmt.Sprintf("proxy %d to refuse the rolled-back metadata", i), func() bool {
			_, now, _ := p.get("/metrics")
			return refreshFailures(now) > refreshFailures(before)
		})
		if code, body, _ := p.get(acme); code != 403 {
			t.Fatalf("proxy %d after rollback to v1: %d %s; v2 must stay in force", i, code, body)
		}
		if v := p.in.policy.Version(); v != v2 {
			t.Fatalf("proxy %d policy version %q after rollback, want %q", i, v, v2)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestPolicyFromValidation(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.json")
	writeFile(t, root, "{}")
	for _, tc := range []struct{ policy, want string }{
		{`{from: {trust: corp}}`, "policy.from: both trust and target are required"},
		{`{from: {trust: nope, target: p.yaml}}`, `policy.from.trust: "nope" is not a configured trust repository`},
		{`{from: {trust: corp, target: p.yaml}, rules: [{match: "up/**", mode: allow}]}`, "or locally, not both"},
		{`{from: {trust: corp, target: p.yaml, extra: 1}}`, "policy.from.extra"},
	} {
		p := filepath.Join(dir, "c.yaml")
		writeFile(t, p, fmt.Sprintf(`upstreams: [{name: up, url: "http://127.0.0.1:1"}]
storage: {inmemory: {}}
state: %q
trust: {corp: {metadata: %q, root: %q}}
policy: %s
`, dir, dir, root, tc.policy))
		if _, err := loadConfig(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("policy %s: %v, want an error containing %q", tc.policy, err, tc.want)
		}
	}
}

// refreshFailures reads trustproxy_trust_refresh_failures_total of corp
// from a /metrics page.
func refreshFailures(page string) float64 {
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, `trustproxy_trust_refresh_failures_total{repository="corp"} `); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return -1
}
