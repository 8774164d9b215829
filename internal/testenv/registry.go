// Package testenv starts real parts for tests: a distribution v3 registry
// in-process on loopback, and small helpers to push content into it.
package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // the "inmemory" driver factory
	"github.com/sirupsen/logrus"
)

// Registry is a real distribution v3 registry serving on 127.0.0.1.
type Registry struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Host is host:port, the form go-containerregistry references use.
	Host string

	server *httptest.Server
	// middleware, when set, wraps every request; tests use it to tamper with
	// or count upstream traffic in front of the real registry.
	middleware atomic.Pointer[func(http.ResponseWriter, *http.Request, http.Handler)]
	requests   atomic.Int64
	cancel     context.CancelFunc
}

// NewRegistry starts an in-memory distribution v3 registry. It stops when the
// test ends.
func NewRegistry(t testing.TB) *Registry {
	t.Helper()
	return NewRegistryWithStorage(t, configuration.Storage{"inmemory": configuration.Parameters{}})
}

// NewRegistryWithStorage starts a distribution v3 registry with the given
// storage configuration (e.g. filesystem with a rootdirectory).
func NewRegistryWithStorage(t testing.TB, storage configuration.Storage) *Registry {
	t.Helper()
	r, err := startRegistry(storage, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// startRegistry starts a distribution v3 registry on addr. It silences
// logrus process-wide, which only a test process may do.
func startRegistry(storage configuration.Storage, addr string) (*Registry, error) {
	storage["delete"] = configuration.Parameters{"enabled": true}
	storage["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}
	return startRegistryConfig(&configuration.Configuration{Storage: storage}, addr)
}

// startRegistryConfig starts a distribution v3 registry with a full
// configuration (auth, storage middleware) on addr. Close stops it.
func startRegistryConfig(cfg *configuration.Configuration, addr string) (*Registry, error) {
	logrus.SetOutput(io.Discard) // distribution logs through logrus' global logger
	cfg.HTTP.Secret = "trustproxy-test"
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	r := &Registry{cancel: cancel}
	r.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if mw := r.middleware.Load(); mw != nil {
			(*mw)(w, req, app)
			return
		}
		app.ServeHTTP(w, req)
	}))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	r.server.Listener = l
	r.server.Start()
	r.URL = r.server.URL
	r.Host = strings.TrimPrefix(r.server.URL, "http://")
	return r, nil
}

// SetMiddleware installs (or, with nil, removes) a function that handles
// every request instead of the registry; it may call next.ServeHTTP.
func (r *Registry) SetMiddleware(mw func(w http.ResponseWriter, req *http.Request, next http.Handler)) {
	if mw == nil {
		r.middleware.Store(nil)
		return
	}
	r.middleware.Store(&mw)
}

// Requests is the number of HTTP requests the registry has received.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// Close stops the registry (tests also use it to simulate an outage). It
// may be called more than once.
func (r *Registry) Close() {
	r.server.Close()
	r.cancel()
}
