package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trustproxy/trustproxy/cache"
)

// benchEnv is trustproxy in enforce mode in front of a real registry, with
// a real TUF repository and a filesystem cache, as `trustproxy serve`
// assembles it.
type benchEnv struct{ *trustEnv }

// withBig adds acme/big:v1, a 64 MiB image; only the blob benchmark needs
// it (pushing it into the in-memory upstream costs tens of CPU seconds).
func newBenchEnv(b *testing.B, withBig bool) *benchEnv {
	return newBenchEnvMem(b, withBig, 0)
}

// newBenchEnvMem is newBenchEnv with the cache's manifest memory budget
// (cache.Options.ManifestMemory: 0 default, negative none).
func newBenchEnvMem(b *testing.B, withBig bool, manifestMemory int64) *benchEnv {
	b.Helper()
	// Production encoder, so the audit and access lines are paid for; the
	// write goes nowhere so the disk does not count.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	dir := b.TempDir()
	c, err := cache.NewFromConfig(context.Background(), "filesystem", map[string]any{"rootdirectory": filepath.Join(dir, "cache")},
		cache.Options{SpoolDir: filepath.Join(dir, "spool"), Logger: log, ManifestMemory: manifestMemory})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	te := newTrustEnvWith(b, envOpts{cache: c, log: log})
	te.up.PushRandomImage(b, "acme/app:v1", 1024, 1, types.OCIManifestSchema1)
	te.sign(b, "acme/app:v1", nil)
	if withBig {
		te.up.PushRandomImage(b, "acme/big:v1", benchBlobSize, 1, types.OCIManifestSchema1)
		te.sign(b, "acme/big:v1", nil)
	}
	return &benchEnv{te}
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
// and by digest; with the verified bodies held in memory (the default) and
// read from the storage driver on every request (storage.manifestmemory: 0).
func BenchmarkManifest(b *testing.B) {
	for _, mem := range []struct {
		name   string
		budget int64
	}{{"memory", 0}, {"storage", -1}} {
		b.Run(mem.name, func(b *testing.B) {
			e := newBenchEnvMem(b, false, mem.budget)
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
		})
	}
}

// BenchmarkBlobFromCache serves a cached 64 MiB blob over loopback HTTP,
// the path where the filesystem driver's *os.File should reach
// net/http's ReadFrom (sendfile).
func BenchmarkBlobFromCache(b *testing.B) {
	e := newBenchEnv(b, true)
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
