package testenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"                      // auth: htpasswd
	_ "github.com/distribution/distribution/v3/registry/auth/token"                         // auth: token
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"          // the "filesystem" driver factory
	_ "github.com/distribution/distribution/v3/registry/storage/driver/middleware/redirect" // storage middleware: redirect
	"golang.org/x/crypto/bcrypt"
)

// HostLogEntry is one request a test server received, with the credential
// headers it carried.
type HostLogEntry struct {
	Method, Path, Query         string
	Authorization, Cookie, Host string
	ProxyAuthorization          string
}

// HasCredentials reports whether the request carried any credential.
func (e HostLogEntry) HasCredentials() bool {
	return e.Authorization != "" || e.Cookie != "" || e.ProxyAuthorization != ""
}

// HostLog is a server's own record of what reached it: tests assert from it
// that no credential reached a redirect target.
type HostLog struct {
	mu      sync.Mutex
	entries []HostLogEntry
}

// Wrap logs every request before h handles it.
func (l *HostLog) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.entries = append(l.entries, HostLogEntry{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			Authorization: r.Header.Get("Authorization"), Cookie: r.Header.Get("Cookie"),
			ProxyAuthorization: r.Header.Get("Proxy-Authorization")})
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// Entries returns a copy of the log.
func (l *HostLog) Entries() []HostLogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]HostLogEntry(nil), l.entries...)
}

// CDN is a plain file server over a registry's filesystem root: the target
// of distribution's `redirect` storage middleware. Like S3 with a presigned
// URL, it answers 400 to a request that carries an Authorization header.
type CDN struct {
	URL string
	Log *HostLog
}

// NewCDN serves root on addr ("127.0.0.1:0": same host as the registry,
// another port, the case Go's redirect rule gets wrong).
func NewCDN(t testing.TB, root, addr string) *CDN {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	files := http.FileServer(http.Dir(root))
	c := &CDN{Log: &HostLog{}}
	srv := httptest.NewUnstartedServer(c.Log.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprint(w, `<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>`)
			return
		}
		files.ServeHTTP(w, r)
	})))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// ZooOptions choose how a zoo registry behaves like a real one.
type ZooOptions struct {
	// CDNAddr, when set, puts distribution's redirect middleware in front of
	// a CDN listening there: every blob GET and HEAD answers 307.
	CDNAddr string
	// Token, when set, protects the registry with `auth: token`.
	Token *TokenIssuer
	// HtpasswdUser and HtpasswdPassword, when set, protect it with Basic.
	HtpasswdUser, HtpasswdPassword string
}

// Zoo is a registry that behaves like a public one, plus an unauthenticated
// registry on the same storage that tests push through.
type Zoo struct {
	*Registry
	// Seed serves the same storage without auth or redirects: push here.
	Seed *Registry
	CDN  *CDN
}

// NewZoo starts a zoo registry on 127.0.0.1.
func NewZoo(t testing.TB, o ZooOptions) *Zoo {
	t.Helper()
	root := t.TempDir()
	storage := func() configuration.Storage {
		return configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": root},
			"delete":      configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		}
	}
	cfg := &configuration.Configuration{Storage: storage()}
	z := &Zoo{}
	if o.CDNAddr != "" {
		z.CDN = NewCDN(t, root, o.CDNAddr)
		cfg.Middleware = map[string][]configuration.Middleware{
			"storage": {{Name: "redirect", Options: configuration.Parameters{"baseurl": z.CDN.URL}}},
		}
	}
	switch {
	case o.Token != nil:
		cfg.Auth = configuration.Auth{"token": configuration.Parameters(o.Token.AuthConfig())}
	case o.HtpasswdUser != "":
		path := WriteHtpasswd(t, o.HtpasswdUser, o.HtpasswdPassword)
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "zoo", "path": path}}
	}
	r, err := startRegistryConfig(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("start zoo registry: %v", err)
	}
	t.Cleanup(r.Close)
	z.Registry = r
	z.Seed = NewRegistryWithStorage(t, storage())
	return z
}

// WriteHtpasswd writes a one-user htpasswd file (bcrypt) for distribution
// or trustproxy and returns its path.
func WriteHtpasswd(t testing.TB, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
