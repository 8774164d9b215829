package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The README's Security example parses, resolves its paths and builds the
// access rules it describes.
func TestAccessConfig(t *testing.T) {
	dir := t.TempDir()
	h, _ := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte("alice:"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := `storage: {inmemory: {}}
upstreams:
  - {name: ghcr.io, url: "https://ghcr.io", auth: {username: bot, password: x}}
auth:
  htpasswd: users.htpasswd
  groups: {acme: [alice]}
  operators: [alice]
access:
  - match: ghcr.io/acme/**
    allow: [group:acme]
  - match: [ghcr.io/public/*]
    allow: [anonymous]
limits: {headerTimeout: 5s, maxConnections: 1000, requestsPerSecond: 50, burst: 100}
operator: {listen: "127.0.0.1:9090"}
`
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Htpasswd != filepath.Join(dir, "users.htpasswd") {
		t.Fatalf("htpasswd path %q not resolved against the config's directory", c.Auth.Htpasswd)
	}
	a, err := c.accessAuthority()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth("alice", "alice-pw")
	p, err := a.Authenticate(r)
	if err != nil || !a.Authorize(p, "ghcr.io/acme/app", "ghcr.io/acme/app").Allowed || a.Authorize(p, "ghcr.io/other/app", "ghcr.io/other/app").Allowed {
		t.Fatalf("alice: %v %v", p, err)
	}
	l := c.proxyLimits()
	if l.HeaderTimeout != 5*time.Second || l.MaxConnections != 1000 || l.RequestsPerSecond != 50 || l.Burst != 100 {
		t.Fatalf("limits %+v", l)
	}
}
