package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// reloadEnv is a real trustproxy serving from a configuration file that the
// test rewrites and reloads with SIGHUP.
type reloadEnv struct {
	t        *testing.T
	path     string
	in       *instance
	base     string // http://host:port
	upstream string
}

const reloadAllow = `upstreams: [{name: reg, url: %q}]
storage: {inmemory: {}}
log: {level: warn}
policy:
  rules:
    - {name: acme-allowed, match: "reg/acme/**", mode: allow}
`

const reloadDeny = `upstreams: [{name: reg, url: %q}]
storage: {inmemory: {}}
log: {level: warn}
policy:
  rules:
    - {name: only-other, match: "reg/other/**", mode: allow}
`

func startReloadable(t *testing.T, upstream, yaml string) *reloadEnv {
	t.Helper()
	return startReloadableWith(t, upstream, yaml, 0)
}

// startReloadableWith is startReloadable with serve --watch=watch.
func startReloadableWith(t *testing.T, upstream, yaml string, watch time.Duration) *reloadEnv {
	t.Helper()
	return startReloadableAs(t, upstream, yaml, watch, nil)
}

// startReloadableAs is startReloadableWith with the configuration changed
// by mutate after loading, as serve does.
func startReloadableAs(t *testing.T, upstream, yaml string, watch time.Duration, mutate func(*fileConfig)) *reloadEnv {
	t.Helper()
	e := &reloadEnv{t: t, path: filepath.Join(t.TempDir(), "trustproxy.yaml"), upstream: upstream}
	e.write(yaml)
	ctx, cancel := context.WithCancel(context.Background())
	in, err := openInstance(ctx, e.path, mutate)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	in.watchEvery = watch
	addr, _ := serveInstance(t, ctx, cancel, in)
	e.in, e.base = in, "http://"+addr
	for i := 0; ; i++ { // serveOn subscribes to SIGHUP before it serves
		if resp, err := http.Get(e.base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("proxy did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

func (e *reloadEnv) write(yaml string) {
	e.t.Helper()
	if strings.Contains(yaml, "%q") {
		yaml = fmt.Sprintf(yaml, e.upstream)
	}
	// Replaced by rename, as a deployment tool does: a watcher never reads
	// half a file.
	tmp := e.path + ".new"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.path); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reloadEnv) status() (int, error) {
	e.in.mu.RLock()
	defer e.in.mu.RUnlock()
	return e.in.status.generation, e.in.status.failure
}

// hup sends SIGHUP to this process, as an operator would, and waits until
// the reload it triggers has been applied or refused.
func (e *reloadEnv) hup() error {
	e.t.Helper()
	e.in.mu.RLock()
	gen, failed := e.in.status.generation, e.in.status.failedAt
	e.in.mu.RUnlock()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		e.in.mu.RLock()
		g, f, err := e.in.status.generation, e.in.status.failedAt, e.in.status.failure
		e.in.mu.RUnlock()
		if g != gen {
			return nil
		}
		if !f.Equal(failed) {
			return err
		}
	}
	e.t.Fatal("SIGHUP was not acted on")
	return nil
}

func (e *reloadEnv) get(path string) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.Header.Set("Accept", string(types.OCIManifestSchema1)+", "+string(types.DockerManifestSchema2))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestReloadUnderLoad pulls (manifest and blob) through the real server in
// a bounded client loop while the file flips between a policy that allows
// the repository and one that denies it, reloading with SIGHUP each time:
// every response is exactly what one of the two policies gives, none fails
// for another reason, and a broken file leaves the last policy serving.
func TestReloadUnderLoad(t *testing.T) {
	reg := testenv.NewRegistry(t)
	img := reg.PushRandomImage(t, "acme/app:1", 2048, 1, types.OCIManifestSchema1)
	dg, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	e := startReloadable(t, reg.URL, reloadAllow)

	manifest, blob := "/v2/reg/acme/app/manifests/1", "/v2/reg/acme/app/blobs/"+ld.String()
	// classify says which policy produced a response: "allow", "deny", or
	// an error for anything neither policy would answer.
	classify := func(path string, code int, body string, h http.Header) (string, error) {
		switch {
		case code == 200 && path == manifest && h.Get("Docker-Content-Digest") == dg.String():
			return "allow", nil
		case code == 200 && path == blob && h.Get("Docker-Content-Digest") == ld.String():
			return "allow", nil
		case code == 403 && path == manifest && strings.Contains(body, `"DENIED"`) &&
			strings.Contains(body, "no policy rule allows reg/acme/app (default: deny)"):
			return "deny", nil
		case code == 403 && path == blob && strings.Contains(body, `"DENIED"`) &&
			strings.Contains(body, "no approved manifest of reg/acme/app references it"):
			return "deny", nil
		}
		return "", fmt.Errorf("GET %s: %d %s", path, code, body)
	}
	// Warm: the blob is served only after its manifest was approved.
	if code, body, h := e.get(manifest); code != 200 {
		t.Fatalf("warm-up: %d %s %v", code, body, h)
	}

	stop := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	var failures []error
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ { // bounded even if stop never comes
				select {
				case <-stop:
					return
				default:
				}
				path := manifest
				if i%2 == 1 {
					path = blob
				}
				code, body, h := e.get(path)
				v, err := classify(path, code, body, h)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					seen[path+" "+v]++
				}
				mu.Unlock()
			}
		}()
	}
	for flip := 0; flip < 20; flip++ {
		yaml := reloadDeny
		if flip%2 == 1 {
			yaml = reloadAllow
		}
		e.write(yaml)
		if err := e.hup(); err != nil {
			t.Fatalf("flip %d: %v", flip, err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	// A broken file (a rule naming a trust repository that does not exist)
	// changes nothing: the last policy, allow, keeps serving.
	e.write(reloadAllow + "    - {name: broken, match: \"reg/x/**\", mode: enforce, trust: nowhere}\n")
	if err := e.hup(); err == nil || !strings.Contains(err.Error(), `no trust repository named "nowhere"`) {
		t.Fatalf("broken file: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	t.Logf("responses: %v", seen)
	for _, k := range []string{manifest + " allow", manifest + " deny", blob + " allow", blob + " deny"} {
		if seen[k] == 0 {
			t.Errorf("no %q response: the flips were not observed", k)
		}
	}
	gen, ferr := e.status()
	if gen != 21 || ferr == nil {
		t.Errorf("generation %d, failure %v; want 21 and the broken file's error", gen, ferr)
	}
	if code, body, _ := e.get(manifest); code != 200 {
		t.Errorf("after a broken file the last policy must serve: %d %s", code, body)
	}
	code, body, _ := e.get("/readyz")
	if code != 200 || !strings.Contains(body, "config: generation 21") || !strings.Contains(body, "refused, generation 21 still serves") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	_, metrics, _ := e.get("/metrics")
	for _, want := range []string{`trustproxy_config_reloads_total{result="success"} 20`, `trustproxy_config_reloads_total{result="failure"} 1`,
		"trustproxy_config_last_reload_successful 0", `trustproxy_policy_decisions_total{rule="acme-allowed",verdict="allow-exception"}`,
		`trustproxy_policy_decisions_total{rule="",verdict="deny"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestReloadRefusesRestartOnlyKeys: a changed listen address or storage
// driver refuses the whole file with a message saying a restart is needed;
// a new upstream and a rule for it take effect without one.
func TestReloadRefusesRestartOnlyKeys(t *testing.T) {
	reg := testenv.NewRegistry(t)
	reg.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	e := startReloadable(t, reg.URL, reloadAllow)
	for _, tc := range []struct{ edit, want string }{
		{"listen: 127.0.0.1:1\n" + reloadAllow, "listen changed: it cannot change without a restart"},
		{strings.Replace(reloadAllow, "storage: {inmemory: {}}", "storage: {filesystem: {rootdirectory: cache}}", 1), "storage changed: it cannot change without a restart"},
		{reloadAllow + "limits: {maxConnections: 3}\n", "limits changed: it cannot change without a restart"},
		{"upstreams: [{name: reg, url: %q}]\nbogus: 1\n", "bogus: unknown key"},
	} {
		e.write(tc.edit)
		if err := e.hup(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reload: %v, want %q", err, tc.want)
		}
	}
	if gen, _ := e.status(); gen != 1 {
		t.Fatalf("generation %d after refused files", gen)
	}
	second := "/v2/mirror/acme/app/manifests/1"
	if code, body, _ := e.get(second); code != 404 || !strings.Contains(body, "NAME_UNKNOWN") {
		t.Fatalf("before reload: %d %s", code, body)
	}
	twoUpstreams := func(extra string) string {
		return `upstreams: [{name: reg, url: %q}, {name: mirror, url: ` + fmt.Sprintf("%q", reg.URL) + `}]
storage: {inmemory: {}}
log: {level: warn}
` + extra + `policy:
  rules:
    - {name: acme-allowed, match: "reg/acme/**", mode: allow}
    - {name: mirror-allowed, match: "mirror/acme/**", mode: allow}
`
	}
	e.write(twoUpstreams(""))
	if err := e.hup(); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.get(second); code != 200 {
		t.Fatalf("new upstream after reload: %d %s", code, body)
	}
	// Access rules are swapped too: anonymous clients may now pull only
	// reg/acme/**.
	e.write(twoUpstreams(`access: [{match: "reg/acme/**", allow: [anonymous]}]
`))
	if err := e.hup(); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.get(second); code != 401 && code != 403 {
		t.Fatalf("access rule after reload: %d %s", code, body)
	}
	if code, body, _ := e.get("/v2/reg/acme/app/manifests/1"); code != 200 {
		t.Fatalf("allowed by the access rule: %d %s", code, body)
	}
}

// TestReloadSwapsTrustRepositories: a reload adds a trust repository and
// an enforce rule over it, replaces it when its configuration changes
// (its metrics move to the new one) and removes it again.
func TestReloadSwapsTrustRepositories(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "acme/evil:1", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1")
	state := filepath.Join(m.dir, "state")
	allow := fmt.Sprintf(`upstreams: [{name: up, url: %q}]
storage: {inmemory: {}}
log: {level: warn}
state: %q
policy: {rules: [{name: acme, match: "up/acme/**", mode: allow}]}
`, m.up.URL, state)
	enforce := func(refresh string) string {
		return fmt.Sprintf(`upstreams: [{name: up, url: %q}]
storage: {inmemory: {}}
log: {level: warn}
state: %q
trust: {corp: {metadata: %q, root: %q, refresh: %s}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, m.up.URL, state, filepath.Join(m.repo, "metadata"), m.rootPath(), refresh)
	}
	e := startReloadable(t, m.up.URL, allow)
	evil := "/v2/up/acme/evil/manifests/1"
	if code, body, _ := e.get(evil); code != 200 {
		t.Fatalf("allow: %d %s", code, body)
	}
	for _, refresh := range []string{"5m", "7m"} {
		e.write(enforce(refresh))
		if err := e.hup(); err != nil {
			t.Fatal(err)
		}
		if code, body, _ := e.get("/v2/up/acme/app/manifests/1"); code != 200 {
			t.Fatalf("signed image under enforce (refresh %s): %d %s", refresh, code, body)
		}
		if code, body, _ := e.get(evil); code != 403 || !strings.Contains(body, `no target \"up/acme/evil:1\"`) {
			t.Fatalf("unsigned image under enforce (refresh %s): %d %s", refresh, code, body)
		}
		if _, metrics, _ := e.get("/metrics"); !strings.Contains(metrics, `trustproxy_trust_ready{repository="corp"} 1`) {
			t.Fatalf("trust metrics after reload (refresh %s) missing", refresh)
		}
	}
	e.write(allow)
	if err := e.hup(); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.get(evil); code != 200 {
		t.Fatalf("allow again: %d %s", code, body)
	}
	if _, metrics, _ := e.get("/metrics"); strings.Contains(metrics, `trustproxy_trust_ready{repository="corp"}`) {
		t.Fatal("a removed trust repository still reports metrics")
	}
}

// TestReloadOnFileChange: with serve --watch a changed file is reloaded
// without a signal; a broken one is refused once and the last policy stays.
func TestReloadOnFileChange(t *testing.T) {
	reg := testenv.NewRegistry(t)
	reg.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	e := startReloadableWith(t, reg.URL, reloadAllow, 20*time.Millisecond)
	manifest := "/v2/reg/acme/app/manifests/1"
	waitFor := func(what string, ok func(gen int, err error) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if ok(e.status()) {
				return
			}
		}
		gen, err := e.status()
		t.Fatalf("%s: generation %d, %v", what, gen, err)
	}
	e.write(reloadDeny)
	waitFor("deny policy", func(gen int, _ error) bool { return gen == 2 })
	if code, body, _ := e.get(manifest); code != 403 {
		t.Fatalf("after the file changed: %d %s", code, body)
	}
	e.write(reloadDeny + "    - {name: broken, match: \"reg/x/**\", mode: enforce, trust: nowhere}\n")
	waitFor("broken file", func(_ int, err error) bool { return err != nil })
	time.Sleep(100 * time.Millisecond) // several polls: refused once, not again
	e.in.mu.RLock()
	failed := e.in.status.metrics
	e.in.mu.RUnlock()
	if got := testutil.ToFloat64(failed.reloads.WithLabelValues("failure")); got != 1 {
		t.Errorf("a broken file was tried %v times, want once", got)
	}
	if gen, _ := e.status(); gen != 2 {
		t.Errorf("generation %d after a broken file", gen)
	}
	if code, body, _ := e.get(manifest); code != 403 {
		t.Fatalf("the last policy must stay: %d %s", code, body)
	}
	e.write(reloadAllow)
	waitFor("allow again", func(gen int, _ error) bool { return gen == 3 })
	if code, body, _ := e.get(manifest); code != 200 {
		t.Fatalf("allow again: %d %s", code, body)
	}
}
