package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/policy"
)

// env is a real upstream registry with trustproxy in front of it.
type env struct {
	up    *testenv.Registry
	srv   *httptest.Server
	host  string // trustproxy's host:port
	cache *cache.Cache
	proxy *Server
}

const upName = "up.test"

type envOpts struct {
	rules   []policy.Rule
	trusts  map[string]policy.TrustSource
	cache   *cache.Cache
	retries int
	log     *zap.Logger // default: the test's log
	// upstream, when set, adjusts the upstream's configuration
	// (credentials, bounds).
	upstream func(*UpstreamConfig)
	access   *access.Authority
	limits   Limits
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	up := testenv.NewRegistry(t)
	return newEnvFor(t, up, o)
}

func newEnvFor(t testing.TB, up *testenv.Registry, o envOpts) *env {
	t.Helper()
	if o.log == nil {
		o.log = zaptest.NewLogger(t)
	}
	if o.rules == nil {
		o.rules = []policy.Rule{{Name: "open", Match: upName + "/open/**", Mode: policy.ModeAllow}}
	}
	engine, err := policy.New(policy.Config{Rules: o.rules}, o.trusts, policy.Options{Logger: o.log})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	c := o.cache
	if c == nil {
		c, err = cache.New(context.Background(), inmemory.New(), cache.Options{SpoolDir: t.TempDir()})
		if err != nil {
			t.Fatalf("cache: %v", err)
		}
	}
	uc := UpstreamConfig{Name: upName, URL: up.URL, Default: true, Retries: o.retries}
	if o.upstream != nil {
		o.upstream(&uc)
	}
	s, err := New(Options{
		Upstreams: []UpstreamConfig{uc},
		Policy:    engine, Cache: c, Logger: o.log, Access: o.access, Limits: o.limits,
	})
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{up: up, srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), cache: c, proxy: s}
}

// get sends a request to trustproxy.
func (e *env) get(t *testing.T, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func craneOpts() []crane.Option { return []crane.Option{crane.Insecure} }

func mustPlatform(t *testing.T, s string) *v1.Platform {
	t.Helper()
	p, err := v1.ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
