package access

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParseHtpasswd(t *testing.T) {
	for _, tc := range []struct {
		name, file, err string
	}{
		{"bcrypt", "alice:$2y$05$0ZqFMPMWUqr4y0d5JYc5XOMPq1m1pF.x7jOuGfVw8JtJHwLyvG2ES\n# c\n\n", ""},
		{"md5 refused", "bob:$apr1$abc$def\n", "only bcrypt"},
		{"plain refused", "bob:secret\n", "only bcrypt"},
		{"no colon", "bob\n", "want name:bcrypt-hash"},
		{"duplicate", "a:$2y$05$0ZqFMPMWUqr4y0d5JYc5XOMPq1m1pF.x7jOuGfVw8JtJHwLyvG2ES\na:$2y$05$0ZqFMPMWUqr4y0d5JYc5XOMPq1m1pF.x7jOuGfVw8JtJHwLyvG2ES\n", "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHtpasswd([]byte(tc.file))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	a, err := New(Config{
		Htpasswd: writeHtpasswd(t, map[string]string{"alice": "a-pass", "bob": "b-pass", "carol": "c-pass"}),
		Groups:   map[string][]string{"acme": {"alice"}},
		Rules: []Rule{
			{Match: []string{"hub/library/*"}, Allow: []string{"anonymous"}},
			{Match: []string{"ghcr/acme/**"}, Allow: []string{"group:acme"}},
			{Match: []string{"ghcr/acme/shared"}, Allow: []string{"authenticated"}},
			{Match: []string{"ghcr/bob/**"}, Allow: []string{"bob"}},
		},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	anon := Principal{Via: viaAnonymous}
	alice, bob := a.principal("alice", viaBasic), a.principal("bob", viaBasic)
	for _, tc := range []struct {
		p                  Principal
		repo               string
		allowed, challenge bool
	}{
		{anon, "hub/library/alpine", true, false},
		{anon, "ghcr/acme/app", false, true},
		{alice, "ghcr/acme/app", true, false},
		{bob, "ghcr/acme/app", false, false},
		{bob, "ghcr/acme/shared", true, false}, // the exact pattern is more specific
		{anon, "ghcr/acme/shared", false, true},
		{alice, "ghcr/bob/x", false, false},
		{bob, "ghcr/bob/x", true, false},
		{alice, "elsewhere/x", false, false}, // no rule: nobody
		{anon, "elsewhere/x", false, true},
	} {
		d := a.Authorize(tc.p, tc.repo, tc.repo)
		if d.Allowed != tc.allowed || d.Challenge != tc.challenge {
			t.Errorf("%s on %s: %+v, want allowed=%v challenge=%v", tc.p, tc.repo, d, tc.allowed, tc.challenge)
		}
		if !d.Allowed && d.Reason == "" {
			t.Errorf("%s on %s: a denial needs a reason", tc.p, tc.repo)
		}
	}
}

func TestAuthenticateBasic(t *testing.T) {
	a, err := New(Config{
		Htpasswd: writeHtpasswd(t, map[string]string{"alice": "a-pass"}),
		Groups:   map[string][]string{"acme": {"alice"}},
		Rules:    []Rule{{Match: []string{"**"}, Allow: []string{"authenticated"}}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pass, header string
		want                     string
		err                      bool
	}{
		{name: "none", want: "anonymous"},
		{name: "good", user: "alice", pass: "a-pass", want: "alice"},
		{name: "good again (cached)", user: "alice", pass: "a-pass", want: "alice"},
		{name: "wrong password", user: "alice", pass: "wrong", err: true},
		{name: "after a cached success, still wrong", user: "alice", pass: "a-pass ", err: true},
		{name: "unknown user", user: "mallory", pass: "a-pass", err: true},
		{name: "bad scheme", header: "Digest x", err: true},
		{name: "bad bearer", header: "Bearer abc", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v2/", nil)
			if tc.user != "" {
				r.SetBasicAuth(tc.user, tc.pass)
			}
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			p, err := a.Authenticate(r)
			if tc.err {
				if !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("err = %v, want ErrBadCredentials", err)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", p, err, tc.want)
			}
			if tc.want == "alice" && (len(p.Groups) != 1 || p.Groups[0] != "acme") {
				t.Fatalf("groups = %v", p.Groups)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	key, _ := writeECKey(t)
	users := writeHtpasswd(t, map[string]string{"a": "b"})
	for _, tc := range []struct {
		name string
		c    Config
		err  string
	}{
		{"no rules", Config{Htpasswd: users}, "at least one rule"},
		{"unknown group", Config{Rules: []Rule{{Match: []string{"**"}, Allow: []string{"group:x"}}}}, "names no configured group"},
		{"bad pattern", Config{Rules: []Rule{{Match: []string{"a/**/b"}, Allow: []string{"anonymous"}}}}, "last segment"},
		{"empty allow", Config{Rules: []Rule{{Match: []string{"**"}}}}, "at least one principal"},
		{"anonymous operators", Config{Operators: []string{"anonymous"}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "operators"},
		{"token without users", Config{Token: &TokenConfig{Issuer: "i", Service: "s", Key: key}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "needs htpasswd users or mtls"},
		{"token without key", Config{Htpasswd: users, Token: &TokenConfig{Issuer: "i", Service: "s"}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "key are required"},
		{"external without keys", Config{External: &ExternalConfig{Realm: "r", Issuer: "i", Service: "s"}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "at least one signing key"},
		{"missing htpasswd", Config{Htpasswd: "/nonexistent", Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "htpasswd"},
		{"bad identity", Config{MTLS: &MTLSConfig{ClientCAs: users, Identity: "x"}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, "clientCAs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.c, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestMTLSIdentity(t *testing.T) {
	ca, caKey, caFile := newCA(t)
	spiffe, _ := url.Parse("spiffe://corp/ci/runner")
	cert, _ := leaf(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "build-01"}, URIs: []*url.URL{spiffe}})
	for _, tc := range []struct{ identity, want string }{
		{"", "build-01"}, {"commonName", "build-01"}, {"uri", "spiffe://corp/ci/runner"},
	} {
		a, err := New(Config{MTLS: &MTLSConfig{ClientCAs: caFile, Identity: tc.identity},
			Rules: []Rule{{Match: []string{"**"}, Allow: []string{tc.want}}}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert, ca}}}
		p, err := a.Authenticate(r)
		if err != nil || p.Name != tc.want || p.Via != viaMTLS {
			t.Fatalf("identity %q: %+v, %v", tc.identity, p, err)
		}
		if !a.Authorize(p, "x/y", "x/y").Allowed {
			t.Fatalf("%s not allowed", p)
		}
		// An unverified certificate is no identity.
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		if p, _ := a.Authenticate(r); !p.Anonymous() {
			t.Fatalf("unverified certificate gave %v", p)
		}
	}
	a, _ := New(Config{MTLS: &MTLSConfig{ClientCAs: caFile, Identity: "email"}, Rules: []Rule{{Match: []string{"**"}, Allow: []string{"x"}}}}, Options{})
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert, ca}}}
	if _, err := a.Authenticate(r); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("certificate without email: err = %v", err)
	}
}
