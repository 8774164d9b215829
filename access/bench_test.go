package access

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticateAuthorize is the whole per-request cost of client
// authentication on a warm proxy: credentials checked (from the remembered
// bcrypt result or the verified-token cache) and the access rule decided.
func BenchmarkAuthenticateAuthorize(b *testing.B) {
	key, _ := writeECKey(b)
	a, err := New(Config{
		Htpasswd: writeHtpasswd(b, map[string]string{"alice": "a-pass"}),
		Groups:   map[string][]string{"acme": {"alice"}},
		Token:    &TokenConfig{Issuer: "bench", Service: "trustproxy", Key: key},
		Rules: []Rule{
			{Match: []string{"docker.io/library/*"}, Allow: []string{"anonymous"}},
			{Match: []string{"ghcr.io/acme/**"}, Allow: []string{"group:acme"}},
		},
	}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := a.issuer.issue("alice", []string{"acme/app"})
	if err != nil {
		b.Fatal(err)
	}
	basic := httptest.NewRequest("GET", "/v2/acme/app/manifests/v1", nil)
	basic.SetBasicAuth("alice", "a-pass")
	bearer := httptest.NewRequest("GET", "/v2/acme/app/manifests/v1", nil)
	bearer.Header.Set("Authorization", "Bearer "+raw)
	for _, bc := range []struct {
		name string
		req  *http.Request
	}{{"basic", basic}, {"bearer", bearer}} {
		req := bc.req
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := a.Authenticate(req)
				if err != nil || !a.Authorize(p, "ghcr.io/acme/app", "acme/app").Allowed {
					b.Fatal(p, err)
				}
			}
		})
	}
}
