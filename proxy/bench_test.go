package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/publish"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// benchEnv is trustproxy in enforce mode in front of a real registry, with
// a real TUF repository (publish, read by trustfetch from its directory)
// and a filesystem cache, as `trustproxy serve` assembles it. newTrustEnv
// takes a *testing.T, so benchmarks build the same parts here.
type benchEnv struct {
	srv   *httptest.Server
	proxy *Server
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	up := testenv.NewRegistry(b)
	repo, err := publish.Init(ctx, filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), publish.InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	up.PushRandomImage(b, "acme/app:v1", 1024, 1, types.OCIManifestSchema1)
	up.PushRandomImage(b, "acme/big:v1", benchBlobSize, 1, types.OCIManifestSchema1)
	for _, rt := range []string{"acme/app:v1", "acme/big:v1"} {
		ref, err := publish.ParseReference(up.Host+"/"+rt, true)
		if err != nil {
			b.Fatal(err)
		}
		desc, _, err := publish.ResolveImage(ctx, ref)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := repo.AddTarget("targets", upName+"/"+rt, desc.Size, desc.SHA256(), map[string]any{"mediaType": desc.MediaType}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := repo.Publish(ctx); err != nil {
		b.Fatal(err)
	}
	trust, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: "corp", Metadata: filepath.Join(dir, "repo", "metadata"), Root: repo.RootPath(),
		StateDir: filepath.Join(dir, "state"), Refresh: time.Hour,
	}, trustfetch.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Production encoder, so the audit and access lines are paid for; the
	// write goes nowhere so the disk does not count.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	engine, err := policy.New(policy.Config{Rules: trustRules()}, map[string]policy.TrustSource{"corp": trust}, policy.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	c, err := cache.NewFromConfig(ctx, "filesystem", map[string]any{"rootdirectory": filepath.Join(dir, "cache")},
		cache.Options{SpoolDir: filepath.Join(dir, "spool"), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	s, err := New(Options{
		Upstreams: []UpstreamConfig{{Name: upName, URL: up.URL, Default: true}},
		Policy:    engine, Cache: c, Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	return &benchEnv{srv: srv, proxy: s}
}

const benchBlobSize = 64 << 20

// serve runs one request through the handler (no network) and returns the
// recorder.
func (e *benchEnv) serve(b *testing.B, method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	rec := httptest.NewRecorder()
	e.proxy.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return rec
}

// BenchmarkManifest measures the manifest handler with the verified
// manifest already cached: by tag (TUF index → digest → cache → bytes
// checked against the target → approvals recorded → audit and access lines)
// and by digest.
func BenchmarkManifest(b *testing.B) {
	e := newBenchEnv(b)
	dg := e.serve(b, "GET", "/v2/acme/app/manifests/v1").Header().Get("Docker-Content-Digest")
	for _, bc := range []struct{ name, method, path string }{
		{"GET-tag", "GET", "/v2/acme/app/manifests/v1"},
		{"HEAD-tag", "HEAD", "/v2/acme/app/manifests/v1"},
		{"GET-digest", "GET", "/v2/acme/app/manifests/" + dg},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.serve(b, bc.method, bc.path)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.serve(b, bc.method, bc.path)
				}
			})
		})
	}
}

// BenchmarkBlobFromCache serves a cached 64 MiB blob over loopback HTTP,
// the path where the filesystem driver's *os.File should reach
// net/http's ReadFrom (sendfile).
func BenchmarkBlobFromCache(b *testing.B) {
	e := newBenchEnv(b)
	rec := e.serve(b, "GET", "/v2/acme/big/manifests/v1")
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || len(m.Layers) != 1 {
		b.Fatalf("manifest: %v", err)
	}
	url := e.srv.URL + "/v2/acme/big/blobs/" + m.Layers[0].Digest
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func() int64 {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET blob: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		return n
	}
	size := get() // cold: fetched, verified, committed
	b.SetBytes(size)
	for b.Loop() {
		if get() != size {
			b.Fatal("short blob")
		}
	}
}
