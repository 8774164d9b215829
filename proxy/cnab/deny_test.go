package cnab_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

type middleware = func(w http.ResponseWriter, req *http.Request, next http.Handler)

// TestResolveDenies pushes broken bundles to a real registry (or has the
// registry serve altered bytes) and checks that Resolve refuses each with
// an ErrInvalid that names the image and field.
func TestResolveDenies(t *testing.T) {
	r := testenv.NewRegistry(t)
	extra := r.PushRandomImage(t, "acme/deny:unrelated", 128, 1, types.OCIManifestSchema1)
	extraDigest, _ := extra.Digest()
	extraSize, _ := extra.Size()

	for _, tc := range []struct {
		name string
		form testenv.BundleForm
		opts []testenv.BundleOption
		// serve, when set, sits in front of the registry after the push.
		serve func(p testenv.PushedBundle) middleware
		want  []string
	}{
		{
			name: "component digest differs from contentDigest",
			opts: []testenv.BundleOption{testenv.EditBundle(func(b *bundle.Bundle) {
				setImage(b, "db", func(i *bundle.BaseImage) { i.Digest = "sha256:" + strings.Repeat("a", 64) })
			})},
			want: []string{`component "db": descriptor digest sha256:`, "differs from bundle.json contentDigest sha256:" + strings.Repeat("a", 64)},
		},
		{
			name: "invocation digest differs from contentDigest",
			form: testenv.BundleDockerManifestList,
			opts: []testenv.BundleOption{testenv.EditBundle(func(b *bundle.Bundle) {
				b.InvocationImages[0].Digest = "sha256:" + strings.Repeat("b", 64)
			})},
			want: []string{`invocation image "example.com/acme/sample-installer:0.1.0": descriptor digest`, "contentDigest sha256:bbbb"},
		},
		{
			name: "contentDigest is not a digest",
			opts: []testenv.BundleOption{testenv.EditBundle(func(b *bundle.Bundle) {
				setImage(b, "web", func(i *bundle.BaseImage) { i.Digest = "sha256:nothex" })
			})},
			want: []string{`component "web": bundle.json contentDigest "sha256:nothex"`},
		},
		{
			name: "size differs",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) { component(ix, "db").Size++ })},
			want: []string{`component "db": descriptor size`, "differs from bundle.json size"},
		},
		{
			name: "media type differs",
			form: testenv.BundleDockerConfig,
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				component(ix, "db").MediaType = string(types.DockerManifestSchema2)
			})},
			want: []string{`component "db": descriptor media type "application/vnd.docker.distribution.manifest.v2+json" differs from bundle.json mediaType "application/vnd.oci.image.manifest.v1+json"`},
		},
		{
			name: "extra unannotated entry",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				ix.Manifests = append(ix.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(extraDigest.String()), Size: extraSize})
			})},
			want: []string{"extra unannotated entry", extraDigest.String()},
		},
		{
			name: "two config entries",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				c := ix.Manifests[0]
				c.Annotations = map[string]string{cnab.AnnotationManifestType: cnab.ManifestTypeConfig}
				ix.Manifests = append(ix.Manifests, c)
			})},
			want: []string{"two config entries"},
		},
		{
			name: "unknown manifest type",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				component(ix, "db").Annotations[cnab.AnnotationManifestType] = "sidecar"
			})},
			want: []string{`unknown io.cnab.manifest.type "sidecar"`},
		},
		{
			name: "bundle.json image without index entry",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				ix.Manifests = removeComponent(ix.Manifests, "web")
			})},
			want: []string{`component "web": bundle.json image "example.com/acme/web:1.4.2" has no index entry`},
		},
		{
			name: "index entry without bundle.json image",
			opts: []testenv.BundleOption{testenv.EditIndex(func(ix *ocispec.Index) {
				component(ix, "web").Annotations[cnab.AnnotationComponentName] = "cache"
			})},
			want: []string{`component "cache": index entry`, "names no image in bundle.json"},
		},
		{
			name: "bundle.json oversized",
			opts: []testenv.BundleOption{testenv.EditBundle(func(b *bundle.Bundle) {
				b.Custom = map[string]any{"padding": strings.Repeat("x", cnab.MaxBundleJSONSize)}
			})},
			serve: func(testenv.PushedBundle) middleware { return refuseBlobs() },
			want:  []string{"bundle.json is 419", "more than the 4194304 allowed"},
		},
		{
			name: "bundle.json malformed",
			opts: []testenv.BundleOption{testenv.EditBundleJSON(func(b []byte) []byte { return b[:len(b)-1] })},
			want: []string{"bundle.json is not a well-formed JSON object"},
		},
		{
			name: "bundle.json duplicate key",
			form: testenv.BundleOCIImageConfig,
			opts: []testenv.BundleOption{testenv.EditBundleJSON(func(b []byte) []byte {
				return append([]byte(`{"name":"other",`), b[1:]...)
			})},
			want: []string{`bundle.json is not a well-formed JSON object: duplicate key "name"`},
		},
		{
			name: "bundle.json size not an integer",
			opts: []testenv.BundleOption{testenv.EditBundleJSON(func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"size":`)) + len(`"size":`)
				j := i + bytes.IndexByte(b[i:], '}')
				return append(append(append([]byte(nil), b[:j]...), ".0"...), b[j:]...)
			})},
			want: []string{`component "db": bundle.json size`, "is not a non-negative integer"},
		},
		{
			name: "bundle.json blob does not match the config manifest",
			serve: func(p testenv.PushedBundle) middleware {
				return rewrite("/blobs/"+p.BundleDigest.String(), "", func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"sample"`), []byte(`"sampl3"`), 1)
				})
			},
			want: []string{"bundle.json blob: content digest", "does not match"},
		},
		{
			name: "config manifest does not match its index entry",
			serve: func(p testenv.PushedBundle) middleware {
				return rewrite("/manifests/"+p.ConfigManifestDigest.String(), "", func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
				})
			},
			want: []string{"config manifest: content digest", "does not match"},
		},
		{
			name: "config manifest served as another type",
			serve: func(p testenv.PushedBundle) middleware {
				return rewrite("/manifests/"+p.ConfigManifestDigest.String(), string(types.DockerManifestSchema2), nil)
			},
			want: []string{`served as "application/vnd.docker.distribution.manifest.v2+json", index entry says "application/vnd.oci.image.manifest.v1+json"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := strings.ReplaceAll(tc.name, " ", "-")
			tag = strings.ReplaceAll(tag, ".", "-")
			p := r.PushBundle(t, "acme/deny:"+tag, testenv.SampleBundle(), tc.form, tc.opts...)
			if tc.serve != nil {
				r.SetMiddleware(tc.serve(p))
				defer r.SetMiddleware(nil)
			}
			b, err := resolveOverHTTP(t, r, "acme/deny", tag)
			if err == nil {
				t.Fatalf("resolved %s; want a refusal", b.Index.Digest)
			}
			if !errors.Is(err, cnab.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func setImage(b *bundle.Bundle, name string, f func(*bundle.BaseImage)) {
	img := b.Images[name]
	f(&img.BaseImage)
	b.Images[name] = img
}

func component(ix *ocispec.Index, name string) *ocispec.Descriptor {
	for i := range ix.Manifests {
		if ix.Manifests[i].Annotations[cnab.AnnotationComponentName] == name {
			return &ix.Manifests[i]
		}
	}
	panic("no component " + name)
}

func removeComponent(ds []ocispec.Descriptor, name string) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, d := range ds {
		if d.Annotations[cnab.AnnotationComponentName] != name {
			out = append(out, d)
		}
	}
	return out
}

// rewrite serves GETs whose path ends in suffix with the registry's answer
// altered: a different body and/or Content-Type.
func rewrite(suffix, contentType string, body func([]byte) []byte) middleware {
	return func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if req.Method != http.MethodGet || !strings.HasSuffix(req.URL.Path, suffix) {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		b := rec.Body.Bytes()
		if body != nil {
			b = body(b)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
	}
}

// refuseBlobs makes any blob fetch fail (with an error that is not
// ErrInvalid): an oversized bundle.json must be refused from its descriptor
// alone.
func refuseBlobs() middleware {
	return func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if strings.Contains(req.URL.Path, "/blobs/") {
			http.Error(w, "blob fetched for an oversized bundle.json", http.StatusTeapot)
			return
		}
		next.ServeHTTP(w, req)
	}
}
