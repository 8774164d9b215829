package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TokenIssuer is a token server for distribution's `auth: token`: it signs
// JWTs with a key the registry trusts through a jwks file (kid "test"). It is
// the one server tests may write themselves (everything else is real).
type TokenIssuer struct {
	// URL is the realm, e.g. http://127.0.0.2:41234/token.
	URL      string
	Service  string
	Issuer   string
	JWKSPath string
	// Username and Password, when set, are required (Basic) for any token;
	// without them every caller gets an anonymous pull token.
	Username, Password string
	// Lifetime is how long the registry accepts a token (distribution adds
	// 60 s of leeway to exp; the issuer subtracts it). Default 5 minutes.
	Lifetime atomic.Int64 // nanoseconds
	// ExpiresIn, when set, is what the token response claims (a lie when it
	// differs from Lifetime: the registry's 401 is then the only signal).
	ExpiresIn atomic.Int64 // seconds
	// Log records every request to the issuer.
	Log *HostLog

	key    *ecdsa.PrivateKey
	issued atomic.Int64
}

// NewTokenIssuer starts an issuer listening on addr (e.g. "127.0.0.2:0", a
// realm on another loopback address than the registry's).
func NewTokenIssuer(t testing.TB, addr string) *TokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ti := &TokenIssuer{Service: "registry.test", Issuer: "trustproxy-test-issuer", key: key, Log: &HostLog{}}
	ti.Lifetime.Store(int64(5 * time.Minute))
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	ti.JWKSPath = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(ti.JWKSPath, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(ti.Log.Wrap(http.HandlerFunc(ti.serve)))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	ti.URL = srv.URL + "/token"
	return ti
}

// Issued is the number of tokens handed out.
func (ti *TokenIssuer) Issued() int64 { return ti.issued.Load() }

// AuthConfig is the registry's `auth: token` section for this issuer.
func (ti *TokenIssuer) AuthConfig() map[string]any {
	return map[string]any{"realm": ti.URL, "service": ti.Service, "issuer": ti.Issuer, "jwks": ti.JWKSPath}
}

func (ti *TokenIssuer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/token" {
		http.NotFound(w, r)
		return
	}
	// GET with Basic credentials, or the OAuth2 form a credential helper's
	// identity token is exchanged with (grant_type=refresh_token; the
	// Password is the refresh token).
	params, subject := r.URL.Query(), "anonymous"
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			http.Error(w, "unsupported grant", http.StatusBadRequest)
			return
		}
		params = r.PostForm
		params["scope"] = strings.Fields(strings.Join(params["scope"], " "))
	}
	if ti.Username != "" {
		u, p, ok := r.BasicAuth()
		switch {
		case r.Method == http.MethodPost && params.Get("refresh_token") == ti.Password:
			subject = ti.Username
		case r.Method == http.MethodGet && ok && u == ti.Username && p == ti.Password:
			subject = u
		default:
			http.Error(w, `{"details":"invalid credentials"}`, http.StatusUnauthorized)
			return
		}
	}
	if params.Get("service") != ti.Service {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, sc := range params["scope"] {
		parts := strings.Split(sc, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		actions := strings.Split(parts[2], ",")
		if subject == "anonymous" {
			actions = []string{"pull"}
		}
		grants = append(grants, access{Type: "repository", Name: parts[1], Actions: actions})
	}
	now := time.Now()
	life := time.Duration(ti.Lifetime.Load())
	claims := map[string]any{
		"iss": ti.Issuer, "sub": subject, "aud": ti.Service,
		"exp": now.Add(life - 60*time.Second).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(ti.issued.Add(1)), "access": grants,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ti.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	expiresIn := ti.ExpiresIn.Load()
	if expiresIn == 0 {
		expiresIn = int64(life / time.Second)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": expiresIn, "issued_at": now.UTC().Format(time.RFC3339)})
}
