package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

const (
	zooUser = "puller"
	zooPass = "s3cret"
)

// Docker Hub's shape, on loopback: a token realm on another address (an IP
// literal), blob GETs answered 307 to a CDN on the registry's own IP but
// another port (the case Go's hostname rule would leak credentials to). The
// CDN's own log shows that no credential reached it; the issuer's shows the
// configured credentials went to the realm.
func TestZooRedirectAndTokenRealm(t *testing.T) {
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Username, issuer.Password = zooUser, zooPass
	zoo := testenv.NewZoo(t, testenv.ZooOptions{CDNAddr: "127.0.0.1:0", Token: issuer})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 100<<10, 3, types.DockerManifestSchema2)
	e := newEnvFor(t, zoo.Registry, envOpts{access: openAccess(t), upstream: func(uc *UpstreamConfig) {
		uc.Username, uc.Password = zooUser, zooPass
	}})

	pulled, err := crane.Pull(e.host+"/open/app:v1", craneOpts()...)
	if err != nil {
		t.Fatalf("pull through trustproxy: %v", err)
	}
	assertSameImage(t, img, pulled)

	cdnHost := strings.TrimPrefix(zoo.CDN.URL, "http://")
	var blobs int
	for _, en := range zoo.CDN.Log.Entries() {
		if en.HasCredentials() {
			t.Errorf("the CDN received credentials: %s %s Authorization=%q Cookie=%q", en.Method, en.Path, en.Authorization, en.Cookie)
		}
		blobs++
	}
	if blobs < 3 { // the 3 layers
		t.Fatalf("the CDN served %d requests; want every blob through the redirect", blobs)
	}
	for _, en := range issuer.Log.Entries() {
		if !strings.HasPrefix(en.Authorization, "Basic ") {
			t.Errorf("token request without the configured credentials: %+v", en)
		}
	}
	if issuer.Issued() == 0 {
		t.Fatal("no token was issued")
	}
	if n := testutil.ToFloat64(e.proxy.metrics.servedBy.WithLabelValues(upName, "blob", cdnHost)); n < 3 {
		t.Fatalf("upstream_responses_total{host=%q} = %v; want the CDN named as the host that served the blobs", cdnHost, n)
	}
}

// A token that the registry stops accepting in the middle of a pull (while
// the token response claimed an hour) is renewed on the registry's 401 and
// the request resent, not failed.
func TestZooTokenExpiresMidPull(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a token to expire")
	}
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Lifetime.Store(int64(3 * time.Second))
	issuer.ExpiresIn.Store(3600)
	zoo := testenv.NewZoo(t, testenv.ZooOptions{Token: issuer})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 10<<10, 2, types.DockerManifestSchema2)
	e := newEnvFor(t, zoo.Registry, envOpts{})
	d, _ := img.Digest()
	resp := e.get(t, "GET", "/v2/open/app/manifests/"+d.String(), nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	before := issuer.Issued()
	time.Sleep(4 * time.Second)
	pulled, err := crane.Pull(e.host+"/open/app@"+d.String(), craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertSameImage(t, img, pulled)
	if issuer.Issued() == before {
		t.Fatal("no new token after the old one expired")
	}
	for _, en := range issuer.Log.Entries() {
		if en.HasCredentials() {
			t.Errorf("anonymous upstream, yet credentials went to the realm: %+v", en)
		}
	}
}

// htpasswd (ECR-like Basic): the configured credentials go to the registry
// itself; without them the client sees why.
func TestZooHtpasswd(t *testing.T) {
	zoo := testenv.NewZoo(t, testenv.ZooOptions{HtpasswdUser: zooUser, HtpasswdPassword: zooPass})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 10<<10, 2, types.OCIManifestSchema1)
	e := newEnvFor(t, zoo.Registry, envOpts{access: openAccess(t), upstream: func(uc *UpstreamConfig) {
		uc.Username, uc.Password = zooUser, zooPass
	}})
	pulled, err := crane.Pull(e.host+"/open/app:v1", craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertSameImage(t, img, pulled)

	anon := newEnvFor(t, zoo.Registry, envOpts{})
	resp := anon.get(t, "GET", "/v2/open/app/manifests/v1", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "UNAUTHORIZED") {
		t.Fatalf("without credentials: %d %s; want 502 UNAUTHORIZED", resp.StatusCode, b)
	}
}

// Hostile redirects: a loop is cut at maxRedirects; a redirect to another
// host (localhost, another port) is followed without the registry's token,
// and the bytes are still hashed.
func TestHostileRedirects(t *testing.T) {
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	zoo := testenv.NewZoo(t, testenv.ZooOptions{Token: issuer})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 10<<10, 1, types.OCIManifestSchema1)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	layer, _ := layers[0].Compressed()
	layerBytes, _ := io.ReadAll(layer)

	var loopHits atomic.Int64
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loopHits.Add(1)
		http.Redirect(w, r, "/again"+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer loop.Close()
	foreignLog := &testenv.HostLog{}
	var tamper atomic.Bool
	foreign := httptest.NewServer(foreignLog.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := layerBytes
		if tamper.Load() {
			b = append([]byte("x"), b[1:]...)
		}
		_, _ = w.Write(b)
	})))
	defer foreign.Close()
	foreignURL := strings.Replace(foreign.URL, "127.0.0.1", "localhost", 1)

	var target atomic.Value
	zoo.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/blobs/"+ld.String()) && r.Header.Get("Authorization") != "" {
			http.Redirect(w, r, target.Load().(string)+"/blob", http.StatusTemporaryRedirect)
			return
		}
		next.ServeHTTP(w, r)
	})
	e := newEnvFor(t, zoo.Registry, envOpts{upstream: func(uc *UpstreamConfig) { uc.MaxRedirects = 4 }})
	d, _ := img.Digest()
	resp := e.get(t, "GET", "/v2/open/app/manifests/"+d.String(), nil)
	resp.Body.Close()

	target.Store(loop.URL)
	resp = e.get(t, "GET", "/v2/open/app/blobs/"+ld.String(), nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "more than 4 redirects") {
		t.Fatalf("redirect loop: %d %s; want 502 naming the hop bound", resp.StatusCode, b)
	}
	if n := loopHits.Load(); n != 4 {
		t.Fatalf("the loop server saw %d requests; want exactly the 4 hops allowed", n)
	}

	target.Store(foreignURL)
	tamper.Store(true)
	// An abort before any header closes the connection: an error is a
	// right answer too.
	if resp, err := http.Get(e.srv.URL + "/v2/open/app/blobs/" + ld.String()); err == nil {
		_, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && resp.StatusCode == 200 {
			t.Fatal("tampered bytes from the redirect target were served as the blob")
		}
	}
	tamper.Store(false)
	resp = e.get(t, "GET", "/v2/open/app/blobs/"+ld.String(), nil)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != string(layerBytes) {
		t.Fatalf("foreign redirect: %d, %d bytes", resp.StatusCode, len(b))
	}
	for _, en := range foreignLog.Entries() {
		if en.HasCredentials() {
			t.Errorf("the foreign host received credentials: %+v", en)
		}
	}
	// At least the tampered and the good download; Go's client may resend
	// the tampered GET once when trustproxy aborts before any header.
	if n := len(foreignLog.Entries()); n < 2 || n > 3 {
		t.Fatalf("foreign host saw %d requests; want 2 (3 if the aborted GET was resent)", n)
	}
}

// assertSameImage checks pulled has want's digest and every layer reads to
// its digest (go-containerregistry verifies layer bytes as they are read).
func assertSameImage(t *testing.T, want, pulled v1.Image) {
	t.Helper()
	wd, _ := want.Digest()
	pd, err := pulled.Digest()
	if err != nil || pd != wd {
		t.Fatalf("pulled %s (%v); want %s", pd, err, wd)
	}
	assertLayersReadable(t, pulled)
}

// auth.keychain with a credential helper's identity token (ACR's refresh
// token): exchanged with the OAuth2 form at the realm, never sent elsewhere.
func TestZooKeychainIdentityToken(t *testing.T) {
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Username, issuer.Password = "00000000-0000-0000-0000-000000000000", "refresh-token-from-a-helper"
	zoo := testenv.NewZoo(t, testenv.ZooOptions{CDNAddr: "127.0.0.1:0", Token: issuer})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 10<<10, 2, types.OCIManifestSchema1)
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"),
		[]byte(`{"auths":{"`+upName+`":{"identitytoken":"`+issuer.Password+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	e := newEnvFor(t, zoo.Registry, envOpts{access: openAccess(t), upstream: func(uc *UpstreamConfig) { uc.Keychain = true }})
	pulled, err := crane.Pull(e.host+"/open/app:v1", craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertSameImage(t, img, pulled)
	for _, en := range issuer.Log.Entries() {
		if en.Method != http.MethodPost {
			t.Errorf("identity token not exchanged with the OAuth2 form: %+v", en)
		}
	}
	for _, en := range zoo.CDN.Log.Entries() {
		if en.HasCredentials() {
			t.Errorf("the CDN received credentials: %+v", en)
		}
	}
}

// A token whose expires_in is honest is renewed before it runs out: the
// registry never has to refuse one.
func TestZooTokenRenewedBeforeExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a token to expire")
	}
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Lifetime.Store(int64(3 * time.Second))
	zoo := testenv.NewZoo(t, testenv.ZooOptions{Token: issuer})
	img := zoo.Seed.PushRandomImage(t, "open/app:v1", 10<<10, 2, types.OCIManifestSchema1)
	var refused atomic.Int64
	zoo.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
			refused.Add(1)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	e := newEnvFor(t, zoo.Registry, envOpts{})
	d, _ := img.Digest()
	resp := e.get(t, "GET", "/v2/open/app/manifests/"+d.String(), nil)
	resp.Body.Close()
	time.Sleep(4 * time.Second)
	pulled, err := crane.Pull(e.host+"/open/app@"+d.String(), craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertSameImage(t, img, pulled)
	if issuer.Issued() < 2 || refused.Load() != 0 {
		t.Fatalf("%d tokens issued, %d refused by the registry; want a renewal before expiry and no refusal", issuer.Issued(), refused.Load())
	}
}

// A token server that redirects to another origin does not get the
// credentials carried there: the redirect is refused.
func TestZooTokenRedirectToOtherOriginRefused(t *testing.T) {
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Username, issuer.Password = zooUser, zooPass
	elsewhere := &testenv.HostLog{}
	other := httptest.NewServer(elsewhere.Wrap(http.NotFoundHandler()))
	defer other.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/token?"+r.URL.RawQuery, http.StatusFound)
	}))
	defer redirecting.Close()
	realm := issuer.URL
	issuer.URL = redirecting.URL + "/token" // what the registry advertises
	zoo := testenv.NewZoo(t, testenv.ZooOptions{Token: issuer})
	issuer.URL = realm
	e := newEnvFor(t, zoo.Registry, envOpts{access: openAccess(t), upstream: func(uc *UpstreamConfig) {
		uc.Username, uc.Password = zooUser, zooPass
	}})
	resp := e.get(t, "GET", "/v2/open/app/manifests/v1", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "redirect") {
		t.Fatalf("%d %s; want 502 naming the refused token-server redirect", resp.StatusCode, b)
	}
	if n := len(elsewhere.Entries()); n != 0 {
		t.Fatalf("the other origin received %d requests", n)
	}
}
