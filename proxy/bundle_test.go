package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/policy"
)

// signBundle adds target "<upName>/<repoTag>" hashing the bundle.json (CNAB
// Security) or, with index, the index (porter's bundle digest).
func (te *trustEnv) signBundle(t *testing.T, repoTag string, p testenv.PushedBundle, index bool) {
	t.Helper()
	sha, size, mt := p.BundleDigest.Encoded(), int64(len(p.BundleJSON)), p.BundleMediaType
	if index {
		sha, size, mt = p.IndexDigest.Encoded(), int64(len(p.Index)), p.IndexMediaType
	}
	if _, err := te.repo.AddTarget("targets", upName+"/"+repoTag, size, sha, map[string]any{"mediaType": mt}); err != nil {
		t.Fatal(err)
	}
	te.publish(t)
}

// pullBundle pulls a bundle the way cnab-to-oci and porter do: the index by
// tag, the config manifest and bundle.json, then every image by digest from
// the bundle's repository, with all their blobs. It returns the first
// failure's status and message.
func (te *trustEnv) pullBundle(t *testing.T, repo, tag string) (int, string) {
	t.Helper()
	return te.pullTree(t, repo, tag)
}

// pullTree GETs the manifest repo:ref, every blob it names and, for an
// index, every child the same way, checking each digest. It returns the
// first failure's status and message.
func (e *env) pullTree(t *testing.T, repo, ref string) (int, string) {
	t.Helper()
	get := func(path string) (int, []byte, string) {
		resp := e.get(t, "GET", "/v2/"+repo+"/"+path, map[string]string{"Accept": acceptAll})
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return -1, nil, err.Error()
		}
		if resp.StatusCode != 200 {
			return resp.StatusCode, b, string(b)
		}
		if dg := resp.Header.Get("Docker-Content-Digest"); dg != "" && digest.FromBytes(b).String() != dg {
			return -1, nil, "digest mismatch for " + path
		}
		return 200, b, resp.Header.Get("Content-Type")
	}
	var pull func(path string) (int, string)
	pull = func(path string) (int, string) {
		code, body, msg := get(path)
		if code != 200 {
			return code, msg
		}
		var m struct {
			Config    *ocispec.Descriptor
			Layers    []ocispec.Descriptor
			Manifests []ocispec.Descriptor
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return -1, err.Error()
		}
		blobs := m.Layers
		if m.Config != nil {
			blobs = append(blobs, *m.Config)
		}
		for _, b := range blobs {
			if code, _, msg := get("blobs/" + b.Digest.String()); code != 200 {
				return code, msg
			}
		}
		for _, c := range m.Manifests {
			if code, msg := pull("manifests/" + c.Digest.String()); code != 200 {
				return code, msg
			}
		}
		return 200, ""
	}
	return pull("manifests/" + ref)
}

func TestBundleAdmission(t *testing.T) {
	for _, form := range []testenv.BundleForm{testenv.BundleOCI, testenv.BundleOCIImageConfig, testenv.BundleDockerConfig, testenv.BundleDockerManifestList} {
		for _, byIndex := range []bool{false, true} {
			name := form.String() + "/bundle.json"
			if byIndex {
				name = form.String() + "/index"
			}
			t.Run(name, func(t *testing.T) {
				te := newTrustEnv(t)
				p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), form)
				te.signBundle(t, "acme/bundle:1.0", p, byIndex)
				if code, msg := te.pullBundle(t, "acme/bundle", "1.0"); code != 200 {
					t.Fatalf("pull: %d %s", code, msg)
				}
				// Images are served by digest only as part of the bundle.
				if code, _ := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/"+p.Components["db"].String(), nil)); code != "" {
					t.Fatalf("component by digest after approval: %s", code)
				}
			})
		}
	}
}

func TestBundleComponentAloneDenied(t *testing.T) {
	te := newTrustEnv(t)
	p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	te.signBundle(t, "acme/bundle:1.0", p, false)
	code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/"+p.Components["db"].String(), nil))
	if code != "DENIED" {
		t.Fatalf("component pulled alone before its bundle: %s %s", code, msg)
	}
}

func TestBundleDenials(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testenv.BundleOption
		sign func(p testenv.PushedBundle) testenv.PushedBundle
		want string
	}{
		{name: "bundle.json not matching its target",
			sign: func(p testenv.PushedBundle) testenv.PushedBundle {
				p.BundleJSON = append(bytes.Clone(p.BundleJSON), ' ')
				p.BundleDigest = digest.FromBytes(p.BundleJSON)
				return p
			}, want: "matches neither the bundle.json"},
		{name: "component digest differs from contentDigest",
			opts: []testenv.BundleOption{testenv.EditBundle(func(b *bundle.Bundle) {
				img := b.Images["db"]
				img.Digest = "sha256:" + strings.Repeat("ab", 32)
				b.Images["db"] = img
			})}, want: `component "db"`},
		{name: "extra unannotated entry",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				extra := ix.Manifests[len(ix.Manifests)-1]
				extra.Annotations = nil
				ix.Manifests = append(ix.Manifests, extra)
			})}, want: "CNAB bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTrustEnv(t)
			p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI, tc.opts...)
			if tc.sign != nil {
				p = tc.sign(p)
			}
			te.signBundle(t, "acme/bundle:1.0", p, false)
			code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/1.0", nil))
			if code != "DENIED" || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %s %q, want DENIED containing %q", code, msg, tc.want)
			}
			for _, d := range []digest.Digest{p.ConfigManifestDigest, p.Invocation} {
				if c, _ := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/"+d.String(), nil)); c != "DENIED" {
					t.Fatalf("part %s of a denied bundle: %s", d, c)
				}
			}
		})
	}
}

// A tampered invocation image blob never completes at the client.
func TestBundleTamperedInvocationBlob(t *testing.T) {
	te := newTrustEnv(t)
	p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	te.signBundle(t, "acme/bundle:1.0", p, false)
	te.get(t, "GET", "/v2/acme/bundle/manifests/1.0", nil).Body.Close()
	resp := te.get(t, "GET", "/v2/acme/bundle/manifests/"+p.Invocation.String(), map[string]string{"Accept": acceptAll})
	var m ocispec.Manifest
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	layer := m.Layers[0].Digest
	te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, layer.String()) && r.Method == "GET" {
			next.ServeHTTP(&tamperWriter{ResponseWriter: w, mode: "flip"}, r)
			return
		}
		next.ServeHTTP(w, r)
	})
	var b []byte
	resp, err := http.Get(te.srv.URL + "/v2/acme/bundle/blobs/" + layer.String())
	if err == nil { // else aborted before the headers went out: also right
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil && digest.FromBytes(b) == layer {
		t.Fatal("tampered invocation image layer delivered intact")
	}
	if err == nil && int64(len(b)) == resp.ContentLength && resp.StatusCode == 200 {
		t.Fatal("tampered layer response completed")
	}
}

// The byte-exact Signy vector round-trips through the proxy unchanged.
func TestBundleSignyVector(t *testing.T) {
	up, v := testenv.NewRegistryWithSignyVector(t, "acme/signy:0.1.1")
	e := newEnvFor(t, up, envOpts{rules: []policy.Rule{{Name: "open", Match: upName + "/acme/**", Mode: policy.ModeAllow}}})
	resp := e.get(t, "GET", "/v2/acme/signy/manifests/0.1.1", map[string]string{"Accept": acceptAll})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, v.Index) || resp.Header.Get("Docker-Content-Digest") != testenv.SignyIndexDigest.String() {
		t.Fatalf("index: %d %s %q", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ocispec.MediaTypeImageIndex {
		t.Fatalf("Content-Type %q (the index body has no mediaType field; upstream's type must be kept)", ct)
	}
	resp = e.get(t, "GET", "/v2/acme/signy/blobs/"+testenv.SignyBundleDigest.String(), nil)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, v.BundleJSON) {
		t.Fatalf("bundle.json: %d %q", resp.StatusCode, b)
	}
}

// A bundle one of whose images the registry serves with other bytes than
// signed (overwritten under its digest) is denied as a whole at the first
// request: neither the index nor its config manifest, bundle.json or any
// other image is served.
func TestBundleOverwrittenPartDeniedAtAdmission(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(p testenv.PushedBundle, webChild digest.Digest) digest.Digest
		mode   string // "flip": other bytes under the digest
		want   string
	}{
		{"component overwritten", func(p testenv.PushedBundle, _ digest.Digest) digest.Digest { return p.Components["db"] }, "flip",
			`component "db": the registry serves other bytes for manifest`},
		{"invocation image overwritten", func(p testenv.PushedBundle, _ digest.Digest) digest.Digest { return p.Invocation }, "flip",
			`invocation image "example.com/acme/sample-installer:0.1.0": the registry serves other bytes`},
		{"platform manifest of a multi-arch component overwritten", func(_ testenv.PushedBundle, c digest.Digest) digest.Digest { return c }, "flip",
			`component "web" platform manifest: the registry serves other bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTrustEnv(t)
			p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
			te.signBundle(t, "acme/bundle:1.0", p, false)
			var web ocispec.Index
			resp, err := http.Get(te.up.URL + "/v2/acme/bundle/manifests/" + p.Components["web"].String())
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&web)
			resp.Body.Close()
			bad := tc.target(p, web.Manifests[0].Digest)
			te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.HasSuffix(r.URL.Path, "/manifests/"+bad.String()) {
					next.ServeHTTP(&tamperWriter{ResponseWriter: w, mode: tc.mode}, r)
					return
				}
				next.ServeHTTP(w, r)
			})
			code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/1.0", nil))
			if code != "DENIED" || !strings.Contains(msg, tc.want) {
				t.Fatalf("first request: %s %q, want DENIED containing %q", code, msg, tc.want)
			}
			for _, part := range []string{"manifests/" + p.ConfigManifestDigest.String(), "blobs/" + p.BundleDigest.String(),
				"manifests/" + p.Components["db"].String(), "manifests/" + p.Invocation.String()} {
				c, _ := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/"+part, nil))
				if c == "" || (c != "DENIED" && !strings.HasSuffix(part, bad.String())) {
					// The bad part itself fails upstream (wrong bytes, 502)
					// before policy is asked: never served.
					t.Errorf("%s of a denied bundle: %q, want DENIED", part, c)
				}
			}
		})
	}
}

// A component the registry does not have (404) does not deny the bundle:
// there are no bytes to serve in its place; the client gets the 404.
func TestBundleMissingComponentNotADenial(t *testing.T) {
	te := newTrustEnv(t)
	p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	te.signBundle(t, "acme/bundle:1.0", p, false)
	gone := p.Components["db"]
	te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.HasSuffix(r.URL.Path, "/manifests/"+gone.String()) {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
	if code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/1.0", nil)); code != "" {
		t.Fatalf("index: %s %s", code, msg)
	}
	if code, _ := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/"+gone.String(), nil)); code != "MANIFEST_UNKNOWN" {
		t.Fatalf("missing component: %q, want MANIFEST_UNKNOWN", code)
	}
}

// A bundle signed by its bundle.json (or its index) is served from the cache
// when the registry is down, within the TUF expiry: pulled once, then with
// the upstream gone, by tag, with every part.
func TestBundleServedFromCacheWhenRegistryDown(t *testing.T) {
	for _, byIndex := range []bool{false, true} {
		te := newTrustEnv(t)
		p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
		te.signBundle(t, "acme/bundle:1.0", p, byIndex)
		if code, msg := te.pullBundle(t, "acme/bundle", "1.0"); code != 200 {
			t.Fatalf("first pull: %d %s", code, msg)
		}
		te.up.Close()
		if code, msg := te.pullBundle(t, "acme/bundle", "1.0"); code != 200 {
			t.Fatalf("signed by index=%v, registry down: %d %s", byIndex, code, msg)
		}
	}
}
