package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/publish"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// trustEnv is env plus a real TUF repository made with the publisher and
// served over HTTP, and a trustfetch repository reading it.
type trustEnv struct {
	*env
	repo    *publish.Repo
	tufSrv  *httptest.Server
	tufDown func(bool)
	trust   *trustfetch.Repository
	clock   *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// trustRules: enforce for acme/**, audit for audited/**, allow for open/**.
func trustRules() []policy.Rule {
	return []policy.Rule{
		{Name: "acme", Match: upName + "/acme/**", Mode: policy.ModeEnforce, Trust: "corp"},
		{Name: "audited", Match: upName + "/audited/**", Mode: policy.ModeAudit, Trust: "corp"},
		{Name: "open", Match: upName + "/open/**", Mode: policy.ModeAllow},
	}
}

func newTrustEnv(t testing.TB) *trustEnv {
	t.Helper()
	return newTrustEnvWith(t, envOpts{})
}

// newTrustEnvWith is newTrustEnv with the env's cache and logger chosen
// (benchmarks use a filesystem cache and a production encoder).
func newTrustEnvWith(t testing.TB, o envOpts) *trustEnv {
	t.Helper()
	if o.log == nil {
		o.log = zaptest.NewLogger(t)
	}
	ctx := context.Background()
	dir := t.TempDir()
	clock := &testClock{t: time.Now()}
	repo, err := publish.Init(ctx, filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), publish.InitOptions{Now: clock.Now})
	if err != nil {
		t.Fatalf("init trust repository: %v", err)
	}
	var mu sync.Mutex
	down := false
	files := http.FileServer(http.Dir(filepath.Join(dir, "repo")))
	tufSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(tufSrv.Close)
	trust, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: "corp", Metadata: tufSrv.URL + "/metadata", Root: repo.RootPath(),
		StateDir: filepath.Join(dir, "state"), Refresh: time.Hour,
	}, trustfetch.Options{Logger: o.log, Now: clock.Now})
	if err != nil {
		t.Fatalf("open trust repository: %v", err)
	}
	te := &trustEnv{repo: repo, tufSrv: tufSrv, trust: trust, clock: clock,
		tufDown: func(b bool) { mu.Lock(); down = b; mu.Unlock() }}
	if o.rules == nil {
		o.rules = trustRules()
	}
	o.trusts = map[string]policy.TrustSource{"corp": trust}
	te.env = newEnv(t, o)
	return te
}

// sign adds the manifest upstream's repo:tag points at now as target
// "<upName>/<repo>:<tag>", publishes and refreshes the proxy's trust data.
func (te *trustEnv) sign(t testing.TB, repoTag string, custom map[string]any) publish.Descriptor {
	t.Helper()
	ref, err := publish.ParseReference(te.up.Host+"/"+repoTag, true)
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := publish.ResolveImage(context.Background(), ref)
	if err != nil {
		t.Fatalf("resolve %s: %v", repoTag, err)
	}
	if custom == nil {
		custom = map[string]any{}
	}
	custom["mediaType"] = desc.MediaType
	if _, err := te.repo.AddTarget("targets", upName+"/"+repoTag, desc.Size, desc.SHA256(), custom); err != nil {
		t.Fatalf("add target: %v", err)
	}
	te.publish(t)
	return desc
}

func (te *trustEnv) publish(t testing.TB) {
	t.Helper()
	if _, err := te.repo.Publish(context.Background()); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := te.trust.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}
