package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func ociErr(t *testing.T, resp *http.Response) (code, msg string) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) == 0 {
		return "", ""
	}
	return body.Errors[0].Code, body.Errors[0].Message
}

func TestEnforceSignedAndUnsigned(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 2048, 2, types.OCIManifestSchema1)
	unsigned := te.up.PushRandomImage(t, "acme/app:unsigned", 2048, 2, types.OCIManifestSchema1)
	want := te.sign(t, "acme/app:1.0", nil)

	img, err := crane.Pull(te.host+"/"+upName+"/acme/app:1.0", craneOpts()...)
	if err != nil {
		t.Fatalf("signed pull: %v", err)
	}
	if d, _ := img.Digest(); d.String() != want.Digest {
		t.Fatalf("pulled %s, want %s", d, want.Digest)
	}
	assertLayersReadable(t, img)

	code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/unsigned", nil))
	wantMsg := `trustproxy: up.test/acme/app:unsigned denied by rule "acme" (trust "corp" targets v`
	if code != "DENIED" || !strings.HasPrefix(msg, wantMsg) || !strings.HasSuffix(msg, `no target "up.test/acme/app:unsigned"`) {
		t.Fatalf("unsigned tag: %s %q", code, msg)
	}
	ud, _ := unsigned.Digest()
	code, msg = ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/"+ud.String(), nil))
	if code != "DENIED" || !strings.Contains(msg, "is not the hash of any target") {
		t.Fatalf("unsigned digest: %s %q", code, msg)
	}
	cfg, _ := unsigned.ConfigName()
	code, _ = ociErr(t, te.get(t, "GET", "/v2/acme/app/blobs/"+cfg.String(), nil))
	if code != "DENIED" {
		t.Fatalf("blob of unsigned manifest: %s", code)
	}
}

// A tag re-pushed upstream after signing changes nothing for clients.
func TestRepushedTagStillServesSignedDigest(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	want := te.sign(t, "acme/app:1.0", nil)
	evil := te.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	for _, m := range []string{"GET", "HEAD"} {
		resp := te.get(t, m, "/v2/acme/app/manifests/1.0", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != want.Digest {
			t.Fatalf("%s: status %d digest %s, want signed %s", m, resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want.Digest)
		}
	}
	ed, _ := evil.Digest()
	if code, _ := ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/"+ed.String(), nil)); code != "DENIED" {
		t.Fatalf("re-pushed digest served: %s", code)
	}
}

// Tag HEAD of a verified, cached manifest needs no upstream round trip.
func TestVerifiedTagHeadIsLocal(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	te.get(t, "GET", "/v2/acme/app/manifests/1.0", nil).Body.Close()
	var n atomic.Int64
	te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) { n.Add(1); next.ServeHTTP(w, r) })
	for i := 0; i < 5; i++ {
		resp := te.get(t, "HEAD", "/v2/acme/app/manifests/1.0", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("HEAD status %d", resp.StatusCode)
		}
	}
	if n.Load() != 0 {
		t.Fatalf("%d upstream requests for cached verified tag HEADs, want 0", n.Load())
	}
}

func TestMultiArchIndex(t *testing.T) {
	te := newTrustEnv(t)
	idx := te.up.PushRandomIndex(t, "acme/multi:1.0", 3, types.OCIImageIndex)
	te.sign(t, "acme/multi:1.0", nil)
	im, _ := idx.IndexManifest()
	for _, plat := range []string{"linux/amd64", "linux/arm64", "linux/ppc64le"} {
		img, err := crane.Pull(te.host+"/"+upName+"/acme/multi:1.0", append(craneOpts(), crane.WithPlatform(mustPlatform(t, plat)))...)
		if err != nil {
			t.Fatalf("%s: %v", plat, err)
		}
		assertLayersReadable(t, img)
	}
	// A child is served by digest as part of the approved index.
	resp := te.get(t, "GET", "/v2/acme/multi/manifests/"+im.Manifests[0].Digest.String(), nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("child manifest: %d", resp.StatusCode)
	}
}

// Removing a target revokes its manifest and blobs after the next refresh.
func TestRevocation(t *testing.T) {
	te := newTrustEnv(t)
	img := te.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	want := te.sign(t, "acme/app:1.0", nil)
	cfg, _ := img.ConfigName()
	for _, p := range []string{"/v2/acme/app/manifests/1.0", "/v2/acme/app/blobs/" + cfg.String(), "/v2/acme/app/manifests/" + want.Digest} {
		resp := te.get(t, "GET", p, nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("before revocation %s: %d", p, resp.StatusCode)
		}
	}
	if _, err := te.repo.RemoveTarget("targets", upName+"/acme/app:1.0"); err != nil {
		t.Fatal(err)
	}
	te.publish(t)
	for _, p := range []string{"/v2/acme/app/manifests/1.0", "/v2/acme/app/blobs/" + cfg.String(), "/v2/acme/app/manifests/" + want.Digest} {
		if code, msg := ociErr(t, te.get(t, "GET", p, nil)); code != "DENIED" {
			t.Fatalf("after revocation %s: %s %s", p, code, msg)
		}
	}
}

// Audit mode serves but says what enforce would have refused.
func TestAuditWarning(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "audited/app:1.0", 512, 1, types.OCIManifestSchema1)
	resp := te.get(t, "GET", "/v2/audited/app/manifests/1.0", nil)
	resp.Body.Close()
	w := resp.Header.Get("Warning")
	if resp.StatusCode != 200 || !strings.HasPrefix(w, `299 - "trustproxy audit: up.test/audited/app:1.0 would be denied by rule 'audited'`) {
		t.Fatalf("status %d Warning %q", resp.StatusCode, w)
	}
	te.sign(t, "audited/app:1.0", nil)
	resp = te.get(t, "GET", "/v2/audited/app/manifests/1.0", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Warning") != "" {
		t.Fatalf("signed under audit: %d %q", resp.StatusCode, resp.Header.Get("Warning"))
	}
}

// A trust server that goes down: serve from the last verified data until it
// expires, then deny; expiry is enforced by the proxy between refreshes.
func TestTrustServerDownThenExpiry(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	te.tufDown(true)
	if err := te.trust.Refresh(t.Context()); err == nil {
		t.Fatal("refresh succeeded against a down trust server")
	}
	resp := te.get(t, "GET", "/v2/acme/app/manifests/1.0", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("while trust server down: %d", resp.StatusCode)
	}
	te.clock.Advance(25 * time.Hour) // past the 1-day timestamp
	code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/1.0", nil))
	if code != "DENIED" || !strings.Contains(msg, "expire") {
		t.Fatalf("after expiry: %s %q", code, msg)
	}
	te.tufDown(false)
	if _, err := te.repo.Timestamp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := te.trust.Refresh(t.Context()); err != nil {
		t.Fatalf("refresh after the server came back: %v", err)
	}
	resp = te.get(t, "GET", "/v2/acme/app/manifests/1.0", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after recovery: %d", resp.StatusCode)
	}
}

func TestTagsListFromTrust(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 64, 1, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:2.0", 64, 1, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:unsigned", 64, 1, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	te.sign(t, "acme/app:2.0", nil)
	tags, err := crane.ListTags(te.host+"/"+upName+"/acme/app", craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "1.0,2.0" {
		t.Fatalf("tags %v, want only the signed ones", tags)
	}
}
