package access

import (
	"net/http/httptest"
	"testing"
)

// FuzzAuthenticate: any Authorization header a client sends is either a
// principal or ErrBadCredentials, never a panic; htpasswd files and scope
// parameters likewise.
func FuzzAuthenticate(f *testing.F) {
	key, _ := writeECKey(f)
	a, err := New(Config{
		Htpasswd: writeHtpasswd(f, map[string]string{"alice": "a-pass"}),
		Token:    &TokenConfig{Issuer: "fuzz", Service: "trustproxy", Key: key},
		Rules:    []Rule{{Match: []string{"**"}, Allow: []string{"alice"}}},
	}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	raw, _, _ := a.issuer.issue("alice", []string{"x"})
	for _, h := range []string{"", "Basic YWxpY2U6YS1wYXNz", "Basic Og==", "Basic !!!", "Bearer " + raw, "Bearer a.b.c", "Bearer", "Digest x", "basic"} {
		f.Add(h, "repository:x:pull repository:a/b:push,pull", "alice:$2y$05$0ZqFMPMWUqr4y0d5JYc5XOMPq1m1pF.x7jOuGfVw8JtJHwLyvG2ES\n")
	}
	f.Fuzz(func(t *testing.T, header, scope, htpasswd string) {
		r := httptest.NewRequest("GET", "/v2/", nil)
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		p, err := a.Authenticate(r)
		if err == nil {
			_ = a.Authorize(p, "x/y", "x")
		}
		_ = pullScopes(scope)
		_, _ = parseHtpasswd([]byte(htpasswd))
	})
}
