package notary

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// frontend stands between the Source and the real notary-server. It passes
// everything through, except that it can replay a timestamp.json recorded
// earlier: the hostile server of the rollback and freeze tests.
type frontend struct {
	*httptest.Server
	mu         sync.Mutex
	replay     []byte
	timestamps int // timestamp.json requests
}

func newFrontend(t *testing.T, notaryURL string) *frontend {
	u, err := url.Parse(notaryURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &frontend{}
	rp := httputil.NewSingleHostReverseProxy(u)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		replay := f.replay
		if strings.HasSuffix(r.URL.Path, "/_trust/tuf/timestamp.json") {
			f.timestamps++
		}
		f.mu.Unlock()
		if replay != nil && strings.HasSuffix(r.URL.Path, "/_trust/tuf/timestamp.json") {
			w.Write(replay)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *frontend) timestamp(t *testing.T, gun string) []byte {
	resp, err := http.Get(f.URL + "/v2/" + gun + "/_trust/tuf/timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *frontend) setReplay(b []byte) { f.mu.Lock(); f.replay = b; f.mu.Unlock() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func openSource(t *testing.T, url, stateDir string, now func() time.Time, pins ...Pin) *Source {
	t.Helper()
	s, err := Open(Config{Name: "dct", URL: url, StateDir: stateDir, Pins: pins}, Options{Logger: zaptest.NewLogger(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSourceVerifiesDCTSignedTags(t *testing.T) {
	srv := testenv.NewNotaryServer(t)
	signer := testenv.NewNotarySigner(t, srv.URL)
	const gun = "registry.example/acme/app"
	signer.Init(gun)
	signer.AddReleases(gun)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	signer.Sign(gun, "1.0", manifest, "targets/releases", nil)
	other := []byte("top-level targets")
	signer.Sign(gun, "top", other, "targets", nil)
	rootID := signer.RootKeyID(gun)
	ctx := context.Background()

	s := openSource(t, srv.URL, t.TempDir(), nil, Pin{GUN: "registry.example/acme/*", RootKeyIDs: []string{rootID}})
	ix, err := s.IndexFor(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	tg, ok := ix.Lookup(gun + ":1.0")
	if !ok || tg.SHA256 != sha(manifest) || tg.Length != int64(len(manifest)) || tg.Role != "targets/releases" {
		t.Fatalf("target 1.0 = %+v, %v; want sha256 %s, %d bytes, role targets/releases", tg, ok, sha(manifest), len(manifest))
	}
	if tg, ok := ix.Lookup(gun + ":top"); !ok || tg.SHA256 != sha(other) || tg.Role != "targets" {
		t.Fatalf("target top = %+v, %v", tg, ok)
	}
	if got := ix.ByDigest(sha(manifest)); len(got) != 1 || got[0].Name != gun+":1.0" {
		t.Fatalf("ByDigest = %+v", got)
	}

	// Pinning by the root certificate is the same trust.
	byCert := openSource(t, srv.URL, t.TempDir(), nil, Pin{GUN: gun, RootCerts: [][]byte{signer.RootCert(gun)}})
	if _, err := byCert.IndexFor(ctx, gun); err != nil {
		t.Fatalf("pinned by certificate: %v", err)
	}

	// Revocation: a removed tag is gone after the next refresh.
	signer.Remove(gun, "1.0", "targets/releases")
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ix, err = s.IndexFor(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Lookup(gun + ":1.0"); ok {
		t.Fatal("removed tag 1.0 still vouched for after a refresh")
	}
}

func TestSourceRefusals(t *testing.T) {
	srv := testenv.NewNotaryServer(t)
	signer := testenv.NewNotarySigner(t, srv.URL)
	const gun = "registry.example/acme/app"
	signer.Init(gun)
	signer.Sign(gun, "1.0", []byte("x"), "targets", nil)
	impostor := testenv.NewNotarySigner(t, srv.URL) // another root key
	impostor.Init("registry.example/acme/other")
	ctx := context.Background()

	for _, tc := range []struct {
		name, gun string
		pin       Pin
		want      string
	}{
		{"unsigned repository", "registry.example/acme/unsigned",
			Pin{GUN: "registry.example/**", RootKeyIDs: []string{signer.RootKeyID(gun)}}, "has no trust data for it (unsigned)"},
		{"no pin for the GUN", gun,
			Pin{GUN: "elsewhere.example/**", RootKeyIDs: []string{signer.RootKeyID(gun)}}, `no pin in notary trust source "dct" matches GUN`},
		{"wrong pinned root", gun,
			Pin{GUN: "registry.example/**", RootKeyIDs: []string{impostor.RootKeyID("registry.example/acme/other")}}, "root.json does not match the root pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSource(t, srv.URL, t.TempDir(), nil, tc.pin)
			_, err := s.IndexFor(ctx, tc.gun)
			var ue *trustfetch.UnavailableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("IndexFor = %v; want an UnavailableError containing %q", err, tc.want)
			}
		})
	}
}

// appGUN is the collection most tests sign into.
const appGUN = "registry.example/acme/app"

// newCollection starts notary-server behind a frontend, creates appGUN
// with the given tags signed in targets (tag → content), and returns the
// pin of its root.
func newCollection(t *testing.T, tags ...string) (*frontend, *testenv.NotarySigner, Pin) {
	t.Helper()
	srv := testenv.NewNotaryServer(t)
	fe := newFrontend(t, srv.URL)
	signer := testenv.NewNotarySigner(t, srv.URL)
	signer.Init(appGUN)
	for _, tag := range tags {
		signer.Sign(appGUN, tag, []byte(tag), "targets", nil)
	}
	return fe, signer, Pin{GUN: appGUN, RootKeyIDs: []string{signer.RootKeyID(appGUN)}}
}

func TestSourceRefusesRollbackAcrossRestarts(t *testing.T) {
	fe, signer, pin := newCollection(t, "old")
	const gun = appGUN
	old := fe.timestamp(t, gun)
	signer.Sign(gun, "new", []byte("new"), "targets", nil)
	state := t.TempDir()
	ctx := context.Background()

	s := openSource(t, fe.URL, state, nil, pin)
	if _, err := s.IndexFor(ctx, gun); err != nil {
		t.Fatal(err)
	}
	fe.setReplay(old)
	err := s.Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "is lower than current version") {
		t.Fatalf("refresh against a rolled-back timestamp = %v; want a version error", err)
	}
	ix, err := s.IndexFor(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.Lookup(gun + ":new"); !ok {
		t.Fatal("the rolled-back timestamp replaced the newer trust data")
	}

	// A restarted process reads the same state: still refused.
	restarted := openSource(t, fe.URL, state, nil, pin)
	if _, err := restarted.IndexFor(ctx, gun); err == nil {
		t.Fatal("after a restart, the rolled-back timestamp was accepted")
	} else {
		t.Logf("refused after restart: %v", err)
	}
	// A fresh state directory has nothing to compare with: the old, validly
	// signed timestamp is then accepted (what rollback protection needs the
	// persisted state for).
	fresh := openSource(t, fe.URL, t.TempDir(), nil, pin)
	if ix, err := fresh.IndexFor(ctx, gun); err != nil {
		t.Fatalf("fresh state: %v", err)
	} else if _, ok := ix.Lookup(gun + ":new"); ok {
		t.Fatal("the replayed timestamp did not reach the source")
	}
}

func TestSourceRefusesExpiredTimestamp(t *testing.T) {
	fe, _, pin := newCollection(t, "1.0")
	const gun = appGUN
	clk := &clock{t: time.Now()}
	ctx := context.Background()

	s := openSource(t, fe.URL, t.TempDir(), clk.Now, pin)
	ix, err := s.IndexFor(ctx, gun)
	if err != nil {
		t.Fatal(err)
	}
	if ix.ExpiresRole() != "timestamp" {
		t.Fatalf("earliest expiry is %s at %s; notary-server's timestamps should expire first", ix.ExpiresRole(), ix.Expires())
	}
	// The server freezes: it keeps serving this timestamp after it expired.
	fe.setReplay(fe.timestamp(t, gun))
	clk.Advance(ix.Expires().Sub(clk.Now()) + time.Minute)
	if err := s.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "timestamp expired") {
		t.Fatalf("refresh with an expired timestamp = %v; want it refused", err)
	}
	if _, err := s.IndexFor(ctx, gun); !errors.Is(err, trustfetch.ErrExpired) {
		t.Fatalf("IndexFor after expiry = %v; want ErrExpired", err)
	}
	late := openSource(t, fe.URL, t.TempDir(), clk.Now, pin)
	if _, err := late.IndexFor(ctx, gun); err == nil || !strings.Contains(err.Error(), "timestamp expired") {
		t.Fatalf("first load of an expired timestamp = %v; want it refused", err)
	}
}

func TestSourceBundleContent(t *testing.T) {
	srv := testenv.NewNotaryServer(t)
	signer := testenv.NewNotarySigner(t, srv.URL)
	const gun = "registry.example/acme/bundle"
	signer.Init(gun)
	v := testenv.SignyVector()
	signer.Sign(gun, "v1", v.BundleJSON, "targets", []byte(`{"key":"a2V5","layout":"bGF5b3V0","links":{}}`))
	s := openSource(t, srv.URL, t.TempDir(), nil, Pin{GUN: gun, RootKeyIDs: []string{signer.RootKeyID(gun)}, Content: ContentBundle})
	ix, err := s.IndexFor(context.Background(), gun)
	if err != nil {
		t.Fatal(err)
	}
	tg, ok := ix.Lookup(gun + ":v1")
	if !ok || tg.Digest() != testenv.SignyBundleDigest || tg.Length != 501 {
		t.Fatalf("Signy vector target = %+v, %v; want %s, 501 bytes", tg, ok, testenv.SignyBundleDigest)
	}
	if tg.MediaType() != bundleMediaType || !strings.Contains(string(tg.Custom), `"layout":"bGF5b3V0"`) {
		t.Fatalf("custom = %s; want the CNAB config media type and Signy's payload kept", tg.Custom)
	}
}

// Concurrent first requests for one GUN load it once.
func TestSourceLoadsAGUNOnce(t *testing.T) {
	fe, _, pin := newCollection(t, "1.0")
	const gun = appGUN
	s := openSource(t, fe.URL, t.TempDir(), nil, pin)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.IndexFor(context.Background(), gun)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if fe.timestamps != 1 {
		t.Fatalf("%d timestamp.json requests for 8 concurrent first requests, want 1", fe.timestamps)
	}
}

// A private Notary server over https: trusted through Config.CA, refused
// with the system roots alone.
func TestSourceTLSWithPrivateCA(t *testing.T) {
	srv := testenv.NewNotaryServerTLS(t)
	signer := testenv.NewNotarySignerFor(t, srv)
	signer.Init(appGUN)
	signer.Sign(appGUN, "1.0", []byte("x"), "targets", nil)
	pin := Pin{GUN: appGUN, RootKeyIDs: []string{signer.RootKeyID(appGUN)}}
	ctx := context.Background()

	s, err := Open(Config{Name: "dct", URL: srv.URL, StateDir: t.TempDir(), Pins: []Pin{pin}, CA: srv.CA}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ix, err := s.IndexFor(ctx, appGUN); err != nil {
		t.Fatal(err)
	} else if _, ok := ix.Lookup(appGUN + ":1.0"); !ok {
		t.Fatal("tag 1.0 missing")
	}
	noCA := openSource(t, srv.URL, t.TempDir(), nil, pin)
	if _, err := noCA.IndexFor(ctx, appGUN); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v; want a certificate error", err)
	}
}

// Clients choose repository names: GUNs that never verified are forgotten
// first, and the number of GUNs tracked is bounded.
func TestSourceBoundsTrackedGUNs(t *testing.T) {
	fe, signer, _ := newCollection(t, "1.0")
	s := openSource(t, fe.URL, t.TempDir(), nil, Pin{GUN: "registry.example/**", RootKeyIDs: []string{signer.RootKeyID(appGUN)}})
	s.maxGUNs = 2
	ctx := context.Background()
	for _, g := range []string{"registry.example/unsigned/a", "registry.example/unsigned/b"} {
		if _, err := s.IndexFor(ctx, g); err == nil {
			t.Fatalf("%s: unsigned GUN verified", g)
		}
	}
	if _, err := s.IndexFor(ctx, appGUN); err != nil {
		t.Fatalf("a signed GUN after two unsigned ones at the bound: %v", err)
	}
	s.maxGUNs = 1
	if _, err := s.IndexFor(ctx, "registry.example/unsigned/c"); err == nil || !strings.Contains(err.Error(), "already tracks 1 verified GUNs") {
		t.Fatalf("beyond the bound: %v", err)
	}
	if _, err := s.IndexFor(ctx, appGUN); err != nil {
		t.Fatalf("the verified GUN was forgotten: %v", err)
	}
}
