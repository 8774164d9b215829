package access

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func tokenAuthority(t *testing.T, now func() time.Time) *Authority {
	t.Helper()
	key, _ := writeECKey(t)
	a, err := New(Config{
		Htpasswd: writeHtpasswd(t, map[string]string{"alice": "a-pass"}),
		Token:    &TokenConfig{Issuer: "trustproxy-test", Service: "proxy.test", Key: key},
		Rules:    []Rule{{Match: []string{"**"}, Allow: []string{"alice"}}},
	}, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func fetchToken(t *testing.T, a *Authority, r *http.Request) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	a.ServeToken(w, r)
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code == 200 && body.Token != body.AccessToken {
		t.Fatalf("token and access_token differ")
	}
	return w.Code, body.Token
}

func bearer(a *Authority, tok string) (Principal, error) {
	r := httptest.NewRequest("GET", "/v2/x/manifests/latest", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return a.Authenticate(r)
}

func TestTokenService(t *testing.T) {
	now := time.Now()
	a := tokenAuthority(t, func() time.Time { return now })

	r := httptest.NewRequest("GET", "/token?service=proxy.test&scope=repository:acme/app:pull,push&scope=repository:other:push&account=alice", nil)
	r.SetBasicAuth("alice", "a-pass")
	code, tok := fetchToken(t, a, r)
	if code != 200 || tok == "" {
		t.Fatalf("GET /token: %d", code)
	}
	p, err := bearer(a, tok)
	if err != nil || p.Name != "alice" || p.Via != viaBearer {
		t.Fatalf("token principal: %+v, %v", p, err)
	}
	if d := a.Authorize(p, "hub/acme/app", "acme/app"); !d.Allowed {
		t.Fatalf("granted scope refused: %+v", d)
	}
	// Only pull is ever granted, and only on the names asked for.
	if d := a.Authorize(p, "hub/other", "other"); d.Allowed || !d.Challenge {
		t.Fatalf("push-only scope gave pull: %+v", d)
	}

	// The OAuth2 password grant (containerd).
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"a-pass"},
		"service": {"proxy.test"}, "scope": {"repository:acme/app:pull"}}
	r = httptest.NewRequest("POST", "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, tok := fetchToken(t, a, r); code != 200 || tok == "" {
		t.Fatalf("POST /token: %d", code)
	}

	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"wrong password", func() *http.Request {
			r := httptest.NewRequest("GET", "/token?service=proxy.test", nil)
			r.SetBasicAuth("alice", "nope")
			return r
		}, 401},
		{"wrong service", func() *http.Request {
			r := httptest.NewRequest("GET", "/token?service=elsewhere", nil)
			r.SetBasicAuth("alice", "a-pass")
			return r
		}, 400},
		{"refresh grant", func() *http.Request {
			r := httptest.NewRequest("POST", "/token", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400},
		{"token for a token", func() *http.Request {
			r := httptest.NewRequest("GET", "/token", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}, 401},
		{"anonymous", func() *http.Request { return httptest.NewRequest("GET", "/token?scope=repository:x:pull", nil) }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := fetchToken(t, a, tc.req()); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}

	// Expired tokens (past distribution's 60 s leeway) are refused, even
	// when they were verified and cached before.
	now = now.Add(10 * time.Minute)
	if _, err := bearer(a, tok); err == nil {
		t.Fatal("expired token accepted")
	}
	// A token of another trustproxy (another key) is refused.
	other := tokenAuthority(t, time.Now)
	r = httptest.NewRequest("GET", "/token?scope=repository:acme/app:pull", nil)
	r.SetBasicAuth("alice", "a-pass")
	_, foreign := fetchToken(t, other, r)
	if _, err := bearer(a, foreign); err == nil {
		t.Fatal("token signed by another key accepted")
	}
	// Tampering with the claims breaks the signature.
	parts := strings.Split(foreign, ".")
	if _, err := bearer(other, parts[0]+"."+parts[1]+"x."+parts[2]); err == nil {
		t.Fatal("tampered token accepted")
	}
}

// signExternal signs a token the way a distribution-compatible token
// service does: ES256 with the signing certificate chain in x5c.
func signExternal(t *testing.T, key *ecdsa.PrivateKey, chain []*x509.Certificate, kid, iss, aud string, exp time.Time, names ...string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if chain != nil {
		var x5c []string
		for _, c := range chain {
			x5c = append(x5c, encodeB64(c.Raw))
		}
		opts = opts.WithHeader("x5c", x5c)
	}
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	cs := token.ClaimSet{Issuer: iss, Subject: "ci-bot", Audience: token.AudienceList{aud},
		Expiration: exp.Unix(), NotBefore: time.Now().Add(-time.Minute).Unix(), IssuedAt: time.Now().Unix()}
	for _, n := range names {
		cs.Access = append(cs.Access, &token.ResourceActions{Type: "repository", Name: n, Actions: []string{"pull"}})
	}
	raw, err := jwt.Signed(s).Claims(cs).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestExternalTokens(t *testing.T) {
	ca, caKey, caFile := newCA(t)
	signCert, signKey := leaf(t, ca, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "token signer"}})
	a, err := New(Config{
		External: &ExternalConfig{Realm: "https://auth.corp.test/token", Issuer: "corp-auth", Service: "trustproxy", RootCertBundle: caFile},
		Rules:    []Rule{{Match: []string{"**"}, Allow: []string{"ci-bot"}}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(5 * time.Minute)
	for _, tc := range []struct {
		name string
		tok  string
		ok   bool
	}{
		{"x5c chain to the root bundle", signExternal(t, signKey, []*x509.Certificate{signCert}, "", "corp-auth", "trustproxy", exp, "acme/app"), true},
		{"kid of a bundle key", signExternal(t, caKey, nil, token.GetJWKThumbprint(ca.PublicKey), "corp-auth", "trustproxy", exp, "acme/app"), true},
		{"wrong issuer", signExternal(t, signKey, []*x509.Certificate{signCert}, "", "other", "trustproxy", exp, "acme/app"), false},
		{"wrong audience", signExternal(t, signKey, []*x509.Certificate{signCert}, "", "corp-auth", "registry", exp, "acme/app"), false},
		{"expired", signExternal(t, signKey, []*x509.Certificate{signCert}, "", "corp-auth", "trustproxy", time.Now().Add(-5*time.Minute), "acme/app"), false},
		{"unknown key", signExternal(t, signKey, nil, "nope", "corp-auth", "trustproxy", exp, "acme/app"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := bearer(a, tc.tok)
			if !tc.ok {
				if err == nil {
					t.Fatalf("accepted as %v", p)
				}
				return
			}
			if err != nil || p.Name != "ci-bot" {
				t.Fatalf("%+v, %v", p, err)
			}
			if !a.Authorize(p, "hub/acme/app", "acme/app").Allowed || a.Authorize(p, "hub/acme/other", "acme/other").Allowed {
				t.Fatal("token scopes not honoured")
			}
		})
	}
	w := httptest.NewRecorder()
	a.Challenge(w, httptest.NewRequest("GET", "/v2/acme/app/manifests/1", nil), "acme/app")
	if got, want := w.Header().Get("WWW-Authenticate"), `Bearer realm="https://auth.corp.test/token",service="trustproxy",scope="repository:acme/app:pull"`; got != want {
		t.Fatalf("challenge %s, want %s", got, want)
	}
}

func TestPullScopes(t *testing.T) {
	got := pullScopes("repository:a/b:pull repository:host:5000/c:pull,push repository:d:push registry:catalog:* repository:e:*")
	if strings.Join(got, " ") != "a/b host:5000/c e" {
		t.Fatalf("got %q", got)
	}
}
