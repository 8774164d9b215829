package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An upstream that rate-limits (429 + Retry-After, as Docker Hub does past
// its pull limit): what is verified and cached is still served, a tag whose
// TUF target digest is cached needs no upstream at all; anything else gets
// TOOMANYREQUESTS with the upstream's Retry-After, after exactly one
// upstream request (no retry storm), never a 404.
func TestRateLimitedUpstream(t *testing.T) {
	te := newTrustEnv(t)
	img := te.up.PushRandomImage(t, "acme/app:1.0", 4096, 2, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:2.0", 4096, 2, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	te.sign(t, "acme/app:2.0", nil)
	ref := te.host + "/" + upName + "/acme/app:1.0"
	pulled, err := crane.Pull(ref, craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertSameImage(t, img, pulled)

	var limited, gets atomic.Int64
	te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		limited.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			gets.Add(1)
		}
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}`)
	})
	pulled, err = crane.Pull(ref, craneOpts()...)
	if err != nil {
		t.Fatalf("cached, verified tag while the upstream rate-limits: %v", err)
	}
	assertSameImage(t, img, pulled)
	if n := limited.Load(); n != 0 {
		t.Fatalf("serving a cached verified tag sent %d requests upstream; want 0", n)
	}

	resp := te.get(t, "GET", "/v2/acme/app/manifests/2.0", nil)
	code, _ := ociErr(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || code != "TOOMANYREQUESTS" || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("uncached tag: %d %s Retry-After %q; want 429 TOOMANYREQUESTS with the upstream's Retry-After", resp.StatusCode, code, resp.Header.Get("Retry-After"))
	}
	if n := limited.Load(); n != 1 {
		t.Fatalf("the uncached tag cost %d upstream requests; want 1 (no retries of a 429)", n)
	}

	// allow mode (no trust data pins the tag): the tag is asked with HEAD
	// only; a 429 there is passed on without a GET.
	limited.Store(0)
	gets.Store(0)
	resp = te.get(t, "GET", "/v2/open/app/manifests/v1", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" || gets.Load() != 0 || limited.Load() != 1 {
		t.Fatalf("allow-mode tag: %d, %d upstream requests, %d GETs; want 429 after one HEAD", resp.StatusCode, limited.Load(), gets.Load())
	}
}

// A tag no trust data pins is revalidated with HEAD: once its manifest is
// cached, pulling it again costs no manifest GET (the request Docker Hub's
// pull limit counts).
func TestAllowTagRevalidatedWithHead(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.PushRandomImage(t, "open/app:v1", 1024, 1, types.OCIManifestSchema1)
	var gets, heads atomic.Int64
	e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/manifests/") {
			map[string]*atomic.Int64{http.MethodGet: &gets, http.MethodHead: &heads}[r.Method].Add(1)
		}
		next.ServeHTTP(w, r)
	})
	for range 3 {
		resp := e.get(t, "GET", "/v2/open/app/manifests/v1", map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if gets.Load() != 1 || heads.Load() != 3 {
		t.Fatalf("3 pulls of one tag: %d manifest GETs, %d HEADs upstream; want 1 GET and 3 HEADs", gets.Load(), heads.Load())
	}
}
