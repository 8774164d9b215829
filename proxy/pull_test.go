package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// Every way of naming the upstream reaches the same content.
func TestRouteForms(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "open/app:1.0", 1024, 2, types.OCIManifestSchema1)
	want, _ := img.Digest()
	for _, tc := range []struct{ name, path string }{
		{"prefix", "/v2/" + upName + "/open/app/manifests/1.0"},
		{"ns query", "/v2/open/app/manifests/1.0?ns=" + upName},
		{"default upstream", "/v2/open/app/manifests/1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(t, http.MethodGet, tc.path, nil)
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Docker-Content-Digest"); got != want.String() {
				t.Fatalf("digest %s, want %s", got, want)
			}
			if strings.Contains(tc.path, "ns=") && resp.Header.Get("OCI-Namespace") != upName {
				t.Fatalf("OCI-Namespace header = %q", resp.Header.Get("OCI-Namespace"))
			}
		})
	}
	resp := e.get(t, http.MethodGet, "/v2/open/app/manifests/1.0?ns=evil.example.com", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown ns: status %d, want 404 (ns is a closed-world key)", resp.StatusCode)
	}
	// The distribution spec's 255-character limit on the whole name.
	long := "open/" + strings.Repeat("a", 250)
	for _, tc := range []struct {
		name    string
		invalid bool
	}{{long[:200], false}, {long + "b", true}, {upName + "/" + long, true}} {
		resp := e.get(t, http.MethodGet, "/v2/"+tc.name+"/manifests/1", nil)
		if code, msg := ociErr(t, resp); (code == "NAME_INVALID") != tc.invalid {
			t.Fatalf("%d-character name: %s %s, want NAME_INVALID %v", len(tc.name), code, msg, tc.invalid)
		}
	}
}

// crane pulls whole images (single and multi-arch, OCI and Docker types)
// through the proxy, and the manifests are byte-identical to upstream's.
func TestCranePullByteIdentical(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.PushRandomImage(t, "open/docker:v1", 2048, 3, types.DockerManifestSchema2)
	e.up.PushRandomImage(t, "open/oci:v1", 2048, 3, types.OCIManifestSchema1)
	e.up.PushRandomIndex(t, "open/multi:v1", 3, types.OCIImageIndex)
	e.up.PushRandomIndex(t, "open/list:v1", 2, types.DockerManifestList)
	for _, repo := range []string{"open/docker", "open/oci", "open/multi", "open/list"} {
		t.Run(repo, func(t *testing.T) {
			direct, err := crane.Manifest(e.up.Host+"/"+repo+":v1", craneOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			via, err := crane.Manifest(e.host+"/"+upName+"/"+repo+":v1", craneOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(direct, via) {
				t.Fatalf("manifest bytes differ:\n%s\n%s", direct, via)
			}
			img, err := crane.Pull(e.host+"/"+upName+"/"+repo+":v1", craneOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil { // ggcr verifies the digest while reading
					t.Fatalf("layer: %v", err)
				}
				rc.Close()
			}
		})
	}
}

func TestContentTypeKept(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.PushRandomIndex(t, "open/multi:v1", 2, types.OCIImageIndex)
	e.up.PushRandomImage(t, "open/d:v1", 100, 1, types.DockerManifestSchema2)
	for repo, want := range map[string]string{"open/multi": ocispec.MediaTypeImageIndex, "open/d": string(types.DockerManifestSchema2)} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			resp := e.get(t, m, "/v2/"+repo+"/manifests/v1", map[string]string{"Accept": acceptAll})
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != want {
				t.Errorf("%s %s: Content-Type %q, want %q", m, repo, ct, want)
			}
			if resp.ContentLength <= 0 {
				t.Errorf("%s %s: no Content-Length", m, repo)
			}
		}
	}
}

func TestRange(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "open/r:v1", 10000, 1, types.OCIManifestSchema1)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	rc, _ := layers[0].Compressed()
	full, _ := io.ReadAll(rc)
	e.get(t, http.MethodGet, "/v2/open/r/manifests/v1", nil).Body.Close()
	for _, tc := range []struct {
		rng     string
		status  int
		want    []byte
		ifRange string
	}{
		{rng: "bytes=0-9", status: 206, want: full[:10]},
		{rng: "bytes=100-", status: 206, want: full[100:]},
		{rng: "bytes=-5", status: 206, want: full[len(full)-5:]},
		{rng: "", status: 200, want: full},
		// RFC 9110: a last position past the end is clamped, even one
		// longer than int64; invalid or multiple ranges are ignored; only
		// a range that selects nothing is 416, and not BLOB_UNKNOWN.
		{rng: "bytes=10-99999999", status: 206, want: full[10:]},
		{rng: "bytes=10-99999999999999999999", status: 206, want: full[10:]},
		{rng: "bytes=-99999999999999999999", status: 206, want: full},
		{rng: "bytes=5-1", status: 200, want: full},
		{rng: "bytes=abc", status: 200, want: full},
		{rng: "bytes=0-1,5-6", status: 200, want: full},
		{rng: "items=0-1", status: 200, want: full},
		{rng: "bytes=0-9", ifRange: `"sha256:other"`, status: 200, want: full},
		{rng: "bytes=0-9", ifRange: `"` + ld.String() + `"`, status: 206, want: full[:10]},
		{rng: "bytes=999999-", status: 416},
		{rng: "bytes=-0", status: 416},
	} {
		// twice: once cold (following the download), once from the cache
		for round := 0; round < 2; round++ {
			hdr := map[string]string{"Range": tc.rng}
			if tc.ifRange != "" {
				hdr["If-Range"] = tc.ifRange
			}
			resp := e.get(t, http.MethodGet, "/v2/open/r/blobs/"+ld.String(), hdr)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("range %q round %d: status %d, want %d: %s", tc.rng, round, resp.StatusCode, tc.status, b)
			}
			if tc.status == 416 && (!bytes.Contains(b, []byte(`"RANGE_INVALID"`)) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(full))) {
				t.Fatalf("range %q: 416 body %s, Content-Range %q", tc.rng, b, resp.Header.Get("Content-Range"))
			}
			if tc.want != nil && !bytes.Equal(b, tc.want) {
				t.Fatalf("range %q round %d: %d bytes differ", tc.rng, round, len(b))
			}
		}
	}
}

// A blob whose bytes upstream tampered with never completes at the client
// and is never cached.
func TestTamperedAndTruncatedBlobs(t *testing.T) {
	for _, mode := range []string{"flip", "truncate"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			img := e.up.PushRandomImage(t, "open/t:v1", 64<<10, 1, types.OCIManifestSchema1)
			layers, _ := img.Layers()
			ld, _ := layers[0].Digest()
			e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if !strings.Contains(r.URL.Path, "/blobs/"+ld.String()) || r.Method != http.MethodGet {
					next.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(&tamperWriter{ResponseWriter: w, mode: mode}, r)
			})
			e.get(t, http.MethodGet, "/v2/open/t/manifests/v1", nil).Body.Close()
			var b []byte
			resp, err := http.Get(e.srv.URL + "/v2/open/t/blobs/" + ld.String())
			if err == nil { // else aborted before the headers went out: also right
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if err == nil && digest.FromBytes(b).String() == ld.String() {
				t.Fatalf("client received a complete blob with the right digest from a %s upstream", mode)
			}
			if err == nil && resp.StatusCode == 200 && int64(len(b)) == resp.ContentLength {
				t.Fatalf("response completed (%d bytes) with bad bytes; it must be aborted", len(b))
			}
			if _, err := e.cache.StatBlob(t.Context(), digest.Digest(ld.String())); err == nil {
				t.Fatal("tampered blob was cached")
			}
			e.up.SetMiddleware(nil)
			resp = e.get(t, http.MethodGet, "/v2/open/t/blobs/"+ld.String(), nil)
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if digest.FromBytes(b).String() != ld.String() {
				t.Fatal("after the upstream recovered, the blob is still wrong")
			}
		})
	}
}

type tamperWriter struct {
	http.ResponseWriter
	mode string
	n    int
}

func (w *tamperWriter) Write(p []byte) (int, error) {
	q := append([]byte(nil), p...)
	if w.mode == "flip" && w.n == 0 && len(q) > 0 {
		q[len(q)/2] ^= 0xff
	}
	w.n += len(q)
	if w.mode == "truncate" {
		half := len(q) / 2
		w.ResponseWriter.Write(q[:half])
		panic(http.ErrAbortHandler) // the upstream dies mid-body
	}
	return w.ResponseWriter.Write(q)
}

// Fifty clients asking for one cold blob cause exactly one upstream GET.
func TestConcurrentColdPullsCoalesce(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "open/c:v1", 4<<20, 1, types.OCIManifestSchema1)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	var gets atomic.Int64
	e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
			gets.Add(1)
		}
		next.ServeHTTP(w, r)
	})
	e.get(t, http.MethodGet, "/v2/open/c/manifests/v1", nil).Body.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(e.srv.URL + "/v2/open/c/blobs/" + ld.String())
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			v := digest.Canonical.Digester() // hash while streaming, as clients do
			if _, err := io.Copy(v.Hash(), resp.Body); err != nil || v.Digest().String() != ld.String() {
				errs <- io.ErrUnexpectedEOF
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a client failed: %v", err)
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("upstream blob GETs = %d, want 1", n)
	}
}

func TestDenials(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "closed/app:v1", 100, 1, types.OCIManifestSchema1)
	open := e.up.PushRandomImage(t, "open/app:v1", 100, 1, types.OCIManifestSchema1)
	cfg, _ := img.ConfigName()
	openCfg, _ := open.ConfigName()
	for _, tc := range []struct {
		name, method, path string
		status             int
		code, msg          string
	}{
		{"repository without rule", "GET", "/v2/closed/app/manifests/v1", 403, "DENIED", `no policy rule allows up.test/closed/app`},
		{"blob of denied repository", "GET", "/v2/closed/app/blobs/" + cfg.String(), 403, "DENIED", "no approved manifest"},
		{"blob before its manifest", "GET", "/v2/open/app/blobs/" + openCfg.String(), 403, "DENIED", "no approved manifest"},
		{"push", "PUT", "/v2/open/app/manifests/v2", 405, "UNSUPPORTED", "read-only verifying proxy"},
		{"upload", "POST", "/v2/open/app/blobs/uploads/", 405, "UNSUPPORTED", "read-only verifying proxy"},
		{"delete", "DELETE", "/v2/open/app/manifests/v1", 405, "UNSUPPORTED", "read-only"},
		{"bad digest", "GET", "/v2/open/app/blobs/sha256:nothex", 400, "DIGEST_INVALID", "invalid blob digest"},
		{"missing tag", "GET", "/v2/open/app/manifests/nope", 404, "MANIFEST_UNKNOWN", "not found on upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(t, tc.method, tc.path, nil)
			defer resp.Body.Close()
			var body struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("no OCI error body: %v", err)
			}
			if resp.StatusCode != tc.status || body.Errors[0].Code != tc.code || !strings.Contains(body.Errors[0].Message, tc.msg) {
				t.Fatalf("got %d %s %q; want %d %s containing %q", resp.StatusCode, body.Errors[0].Code, body.Errors[0].Message, tc.status, tc.code, tc.msg)
			}
		})
	}
}

// Upstream trouble is reported as what it is, never as "not found".
func TestUpstreamFailures(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.PushRandomImage(t, "open/app:v1", 100, 1, types.OCIManifestSchema1)
	for _, tc := range []struct {
		name       string
		upstream   int // status the upstream answers manifest requests with
		want       int
		retryAfter string
	}{
		{"429 passes through", http.StatusTooManyRequests, http.StatusTooManyRequests, "17"},
		{"500 is a gateway error", http.StatusInternalServerError, http.StatusBadGateway, ""},
		{"401 is not a 404", http.StatusUnauthorized, http.StatusBadGateway, ""},
		{"403 is not a 404", http.StatusForbidden, http.StatusBadGateway, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if !strings.Contains(r.URL.Path, "/manifests/") {
					next.ServeHTTP(w, r)
					return
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.upstream)
			})
			defer e.up.SetMiddleware(nil)
			resp := e.get(t, "GET", "/v2/open/app/manifests/v1", nil)
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("Retry-After") != tc.retryAfter {
				t.Fatalf("status %d Retry-After %q; want %d and %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.want, tc.retryAfter)
			}
		})
	}
	t.Run("upstream down", func(t *testing.T) {
		e.up.Close()
		resp := e.get(t, "GET", "/v2/open/app/manifests/v2", nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "unreachable") {
			t.Fatalf("status %d %s; want 502 naming the unreachable upstream", resp.StatusCode, b)
		}
	})
}

// Cached content keeps being served when the upstream is gone.
func TestServesFromCacheWhenUpstreamDown(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "open/app:v1", 1000, 2, types.OCIManifestSchema1)
	d, _ := img.Digest()
	ref := e.host + "/" + upName + "/open/app@" + d.String()
	if _, err := crane.Pull(ref, craneOpts()...); err != nil {
		t.Fatal(err)
	}
	pulled, _ := crane.Pull(ref, craneOpts()...)
	layers, _ := pulled.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	e.up.Close()
	img2, err := crane.Pull(ref, craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	assertLayersReadable(t, img2)
}

func assertLayersReadable(t *testing.T, img v1.Image) {
	t.Helper()
	testenv.ReadLayers(t, img)
}

func TestTagsList(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.PushRandomImage(t, "open/app:a", 10, 1, types.OCIManifestSchema1)
	e.up.PushRandomImage(t, "open/app:b", 10, 1, types.OCIManifestSchema1)
	tags, err := crane.ListTags(e.host+"/"+upName+"/open/app", craneOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "a,b" {
		t.Fatalf("tags %v", tags)
	}
}

// Bad manifests from upstream get a clear error and are never cached.
func TestBadUpstreamManifests(t *testing.T) {
	e := newEnv(t, envOpts{})
	img := e.up.PushRandomImage(t, "open/app:v1", 100, 1, types.OCIManifestSchema1)
	d, _ := img.Digest()
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		want       string
	}{
		{"malformed by tag", "/v2/open/app/manifests/v1", []byte("{not json"), 403, "parse manifest"},
		{"wrong bytes for a digest", "/v2/open/app/manifests/" + d.String(), []byte(`{"schemaVersion":2}`), 502, "wrong bytes, refused"},
		{"oversized", "/v2/open/app/manifests/v1", bytes.Repeat([]byte(" "), maxManifestBytes+10), 502, "byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/manifests/") {
					w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
					w.Header().Set("Docker-Content-Digest", digest.FromBytes(tc.body).String())
					w.Write(tc.body)
					return
				}
				next.ServeHTTP(w, r)
			})
			defer e.up.SetMiddleware(nil)
			resp := e.get(t, "GET", tc.path, nil)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("status %d %s; want %d containing %q", resp.StatusCode, b, tc.status, tc.want)
			}
			if _, _, err := e.cache.GetManifest(t.Context(), digest.FromBytes(tc.body)); err == nil {
				t.Fatal("bad manifest was cached")
			}
		})
	}
}
