package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// hostileBlobEnv is trustproxy in front of an upstream whose manifest names
// one blob of unknown size (schema 1 fsLayers) and whose blob body is body.
// It returns the env, the blob's path and a channel closed when the
// upstream's blob handler has returned (its request is over).
func hostileBlobEnv(t *testing.T, adjust func(*UpstreamConfig), body func(ctx context.Context, w http.ResponseWriter)) (*env, string, chan struct{}) {
	t.Helper()
	e := newEnv(t, envOpts{upstream: adjust})
	blob := digest.FromString("hostile " + t.Name())
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":1,"name":"open/app","tag":"v1","fsLayers":[{"blobSum":%q}]}`, blob))
	md := digest.FromBytes(manifest)
	handlerDone := make(chan struct{})
	e.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifests/"+md.String()):
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", md.String())
			_, _ = w.Write(manifest)
		case strings.HasSuffix(r.URL.Path, "/blobs/"+blob.String()):
			defer close(handlerDone)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK) // chunked: no Content-Length
			body(r.Context(), w)
		default:
			next.ServeHTTP(w, r)
		}
	})
	resp := e.get(t, "GET", "/v2/open/app/manifests/"+md.String(), nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d", resp.StatusCode)
	}
	return e, "/v2/open/app/blobs/" + blob.String(), handlerDone
}

// openSpools counts this process's open spool files (unlinked at creation,
// so only /proc shows them).
func openSpools(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list fds: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(target, "trustproxy-spool-") {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 20s", what)
		}
	}
}

// endless writes until the client (trustproxy) hangs up, counting bytes.
func endless(sent *atomic.Int64) func(context.Context, http.ResponseWriter) {
	return func(ctx context.Context, w http.ResponseWriter) {
		chunk := make([]byte, 64<<10)
		for ctx.Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

func drip(every time.Duration, n int) func(context.Context, http.ResponseWriter) {
	return func(ctx context.Context, w http.ResponseWriter) {
		for {
			if _, err := w.Write(make([]byte, n)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}
}

func TestHostileBlobBodies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(*UpstreamConfig)
		grace  time.Duration
		body   func(*atomic.Int64) func(context.Context, http.ResponseWriter)
	}{
		{name: "endless body of unknown size stops at maxBlobBytes",
			adjust: func(uc *UpstreamConfig) { uc.MaxBlobBytes = 1 << 20 },
			body:   endless},
		{name: "drip stops at blobTimeout",
			adjust: func(uc *UpstreamConfig) { uc.BlobTimeout = 1500 * time.Millisecond },
			body:   func(*atomic.Int64) func(context.Context, http.ResponseWriter) { return drip(50*time.Millisecond, 1) }},
		{name: "drip stops below minBytesPerSecond",
			adjust: func(uc *UpstreamConfig) { uc.MinBytesPerSecond = 1 << 10 },
			grace:  300 * time.Millisecond,
			body:   func(*atomic.Int64) func(context.Context, http.ResponseWriter) { return drip(20*time.Millisecond, 10) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			e, path, handlerDone := hostileBlobEnv(t, tc.adjust, tc.body(&sent))
			if tc.grace > 0 {
				e.proxy.upstreams[upName].blobBounds.grace = tc.grace
			}
			// An abort before any body byte closes the connection without
			// headers (Go buffers them): an error is a right answer too.
			if resp, err := http.Get(e.srv.URL + path); err == nil {
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 {
					t.Fatalf("a hostile body was served as a complete blob (%d bytes)", len(got))
				}
				if int64(len(got)) > 1<<20 {
					t.Fatalf("client received %d bytes; more than maxBlobBytes", len(got))
				}
			}
			select {
			case <-handlerDone:
			case <-time.After(20 * time.Second):
				t.Fatal("the upstream download is still running")
			}
			waitFor(t, "released the spool", func() bool { return openSpools(t) == 0 })
		})
	}
}

// The last client of a download of unknown size goes away: the download
// stops (it would otherwise run, detached, up to maxBlobBytes).
func TestAbandonedDownloadOfUnknownSizeStops(t *testing.T) {
	var sent atomic.Int64
	e, path, handlerDone := hostileBlobEnv(t, nil, endless(&sent))
	resp := e.get(t, "GET", path, nil)
	if _, err := io.ReadFull(resp.Body, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-handlerDone:
	case <-time.After(20 * time.Second):
		t.Fatalf("the abandoned download is still running (%d bytes sent)", sent.Load())
	}
	waitFor(t, "released the spool", func() bool { return openSpools(t) == 0 })
}
