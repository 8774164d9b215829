package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/policy"
)

// teamUsers: alice is in team A, bob in team B, ops reads /metrics.
var teamUsers = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "ops": "ops-pw"}

func writeUsers(t testing.TB, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	f := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeTokenKey(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	f := filepath.Join(t.TempDir(), "token.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// teamAccess: each team reads its own repositories, everyone reads public.
func teamAccess(t testing.TB, token bool) *access.Authority {
	t.Helper()
	c := access.Config{
		Htpasswd:  writeUsers(t, teamUsers),
		Groups:    map[string][]string{"team-a": {"alice"}, "team-b": {"bob"}},
		Operators: []string{"ops"},
		Rules: []access.Rule{
			{Match: []string{upName + "/teama/**"}, Allow: []string{"group:team-a"}},
			{Match: []string{upName + "/teamb/**"}, Allow: []string{"group:team-b"}},
			{Match: []string{upName + "/public/**"}, Allow: []string{"anonymous"}},
		},
	}
	return newAuthority(t, c, token)
}

// newAuthority builds c, with the token service when token is set.
func newAuthority(t testing.TB, c access.Config, token bool) *access.Authority {
	t.Helper()
	if token {
		c.Token = &access.TokenConfig{Issuer: "trustproxy-test", Service: "trustproxy", Key: writeTokenKey(t)}
	}
	a, err := access.New(c, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var allowAll = []policy.Rule{{Name: "all", Match: upName + "/**", Mode: policy.ModeAllow}}

func basic(user string) *authn.Basic { return &authn.Basic{Username: user, Password: teamUsers[user]} }

// Both the Basic scheme and the Docker token flow: crane (go-containerregistry,
// as used by ko, kaniko and others) logs in and pulls; other principals and
// anonymous clients get 403 / 401 with a clear OCI error.
func TestClientAuthentication(t *testing.T) {
	for _, mode := range []string{"basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOpts{rules: allowAll, access: teamAccess(t, mode == "token")})
			e.up.PushRandomImage(t, "teama/app:1", 2048, 2, types.OCIManifestSchema1)
			e.up.PushRandomImage(t, "public/base:1", 1024, 1, types.OCIManifestSchema1)

			pull := func(ref string, a authn.Authenticator) error {
				img, err := crane.Pull(e.host+"/"+ref, append(craneOpts(), crane.WithAuth(a))...)
				if err != nil {
					return err
				}
				assertLayersReadable(t, img)
				return nil
			}
			if err := pull("teama/app:1", basic("alice")); err != nil {
				t.Fatalf("alice pulls her team's image: %v", err)
			}
			if err := pull("public/base:1", authn.Anonymous); err != nil {
				t.Fatalf("anonymous pull of an anonymous rule: %v", err)
			}
			for _, tc := range []struct {
				who  authn.Authenticator
				want string
			}{
				{basic("bob"), "DENIED"},
				{authn.Anonymous, "UNAUTHORIZED"},
				{&authn.Basic{Username: "mallory", Password: "wrong"}, "UNAUTHORIZED"},
				{&authn.Basic{Username: "alice", Password: "wrong"}, "UNAUTHORIZED"},
			} {
				err := pull("teama/app:1", tc.who)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("pull as %v: %v, want %s", tc.who, err, tc.want)
				}
			}
		})
	}
}

func TestAccessOnRawRequests(t *testing.T) {
	e := newEnv(t, envOpts{rules: allowAll, access: teamAccess(t, false)})
	e.up.PushRandomImage(t, "teama/app:1", 1024, 1, types.OCIManifestSchema1)
	auth := func(u, p string) map[string]string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return map[string]string{"Authorization": r.Header.Get("Authorization")}
	}
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		status     int
		challenge  bool
	}{
		{"v2 check anonymous", "/v2/", nil, 401, true},
		{"v2 check alice", "/v2/", auth("alice", "alice-pw"), 200, false},
		{"curl -u mallory:wrong", "/v2/teama/app/manifests/1", auth("mallory", "wrong"), 401, true},
		{"empty basic is anonymous", "/v2/teama/app/manifests/1", auth("", ""), 401, true},
		{"tags of a private repository, anonymous", "/v2/teama/app/tags/list", nil, 401, true},
		{"tags of a private repository, other team", "/v2/teama/app/tags/list", auth("bob", "bob-pw"), 403, false},
		{"tags of a private repository, its team", "/v2/teama/app/tags/list", auth("alice", "alice-pw"), 200, false},
		{"no rule matches", "/v2/elsewhere/x/manifests/1", auth("alice", "alice-pw"), 403, false},
		{"metrics anonymous", "/metrics", nil, 401, true},
		{"metrics non-operator", "/metrics", auth("alice", "alice-pw"), 403, false},
		{"metrics operator", "/metrics", auth("ops", "ops-pw"), 200, false},
		{"readyz anonymous", "/readyz", nil, 401, true},
		{"healthz stays open", "/healthz", nil, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(t, http.MethodGet, tc.path, tc.hdr)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if got := resp.Header.Get("WWW-Authenticate") != ""; got != tc.challenge {
				t.Fatalf("WWW-Authenticate %q, want a challenge: %v", resp.Header.Get("WWW-Authenticate"), tc.challenge)
			}
		})
	}
	// The metrics endpoint is also served without credentials on the
	// operator handler (its own listener).
	rec := httptestRecorder(e.proxy.OperatorHandler(), "/metrics")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "trustproxy_") {
		t.Fatalf("operator handler /metrics: %d", rec.Code)
	}
}

// Content one team pulled (and trustproxy cached) is not readable by
// another team through a repository name of its own: a cached manifest is
// served to a repository only when the upstream (or a signed target) says
// that repository holds it, and a blob only under an approval of the same
// repository.
func TestCachedContentDoesNotCrossTeams(t *testing.T) {
	e := newEnv(t, envOpts{rules: allowAll, access: teamAccess(t, false)})
	img := e.up.PushRandomImage(t, "teama/secret:1", 2048, 1, types.OCIManifestSchema1)
	e.up.PushRandomImage(t, "teamb/app:1", 1024, 1, types.OCIManifestSchema1)
	dg, _ := img.Digest()
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	if _, err := crane.Pull(e.host+"/teama/secret:1", append(craneOpts(), crane.WithAuth(basic("alice")))...); err != nil {
		t.Fatal(err)
	}
	bob := basic("bob")
	for _, path := range []string{"/v2/teamb/app/manifests/" + dg.String(), "/v2/teamb/app/blobs/" + ld.String()} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		req.SetBasicAuth(bob.Username, bob.Password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code, msg := ociErr(t, resp)
		if resp.StatusCode == 200 || (code != "MANIFEST_UNKNOWN" && code != "DENIED") {
			t.Fatalf("bob reads team A's cached %s through teamb/app: %d %s %s", path, resp.StatusCode, code, msg)
		}
	}
}

func httptestRecorder(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// openAccess lets anyone pull anything: the explicit form an upstream with
// credentials needs.
func openAccess(t testing.TB) *access.Authority {
	t.Helper()
	a, err := access.New(access.Config{Rules: []access.Rule{{Match: []string{"**"}, Allow: []string{"anonymous"}}}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestUpstreamCredentialsNeedAccessRules(t *testing.T) {
	ups := []UpstreamConfig{{Name: "a", URL: "http://127.0.0.1:1"}, {Name: "b", URL: "http://127.0.0.1:1", Username: "u", Password: "p"}}
	if err := checkUpstreamCredentials(ups, nil); err == nil || !strings.Contains(err.Error(), "upstreams[1] (b) has credentials") {
		t.Fatalf("err = %v", err)
	}
	if err := checkUpstreamCredentials(ups, openAccess(t)); err != nil {
		t.Fatal(err)
	}
	if err := checkUpstreamCredentials(ups[:1], nil); err != nil {
		t.Fatal(err)
	}
}
