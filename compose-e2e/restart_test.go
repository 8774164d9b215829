package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
)

// TestRestartKeepsCacheAndTrust restarts the trustproxy container and shows
// that both its trust state and its cache live on the /data volume:
//
//   - trust state: while it is down, the TUF server is rolled back to the
//     repository's first timestamp. That timestamp is validly signed and
//     unexpired, so a proxy that forgot what it had verified would accept it;
//     this one refuses it as a rollback and is not ready.
//   - cache: with the upstream registry stopped, the signed image is still
//     served in full.
func TestRestartKeepsCacheAndTrust(t *testing.T) {
	s := needStack(t)
	ctx := t.Context()
	ref := s.proxyRef("acme/signed:1.0")
	img, err := crane.Pull(ref, craneOpts(t)...)
	if err == nil {
		err = readImage(img)
	}
	if err != nil {
		t.Fatalf("warm the cache with %s: %v", ref, err)
	}

	served := filepath.Join(s.tufRepo(), "metadata", "timestamp.json")
	current, err := os.ReadFile(served)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Leave the stack as the other tests expect it.
		ctx := context.Background()
		if err := os.WriteFile(served, current, 0o644); err != nil {
			t.Error(err)
		}
		if _, err := s.compose(ctx, "start", "registry"); err != nil {
			t.Error(err)
		}
		if err := waitHTTP(ctx, "http://"+s.registry+"/v2/", 200, 2*time.Minute); err != nil {
			t.Error(err)
		}
		if err := s.waitReady(ctx); err != nil {
			t.Error(err)
		}
	})

	if _, err := s.compose(ctx, "stop", "trustproxy"); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(s.seed.timestampV1, served); err != nil {
		t.Fatal(err)
	}
	if _, err := s.compose(ctx, "start", "trustproxy"); err != nil {
		t.Fatal(err)
	}
	body, err := waitReadyz(ctx, "http://"+s.proxy+"/readyz", "new timestamp version 1 must be >=")
	if err != nil {
		t.Fatalf("after the restart with a rolled-back TUF timestamp: %v", err)
	}
	t.Logf("restarted proxy refuses the rollback: %s", body)
	_, err = crane.Digest(ref, craneOpts(t)...)
	wantDenied(t, "crane digest while trust data is refused", err, upstreamName+"/acme/signed")

	if err := os.WriteFile(served, current, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.compose(ctx, "stop", "registry"); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(ctx); err != nil {
		t.Fatalf("after restoring the TUF timestamp: %v", err)
	}
	start := time.Now()
	img, err = crane.Pull(ref, craneOpts(t)...)
	if err == nil {
		err = readImage(img)
	}
	if err != nil {
		t.Fatalf("pull %s with the upstream stopped, after the restart: %v", ref, err)
	}
	if d, err := img.Digest(); err != nil || d.String() != s.seed.signed {
		t.Fatalf("digest %v, %v; want %s", d, err, s.seed.signed)
	}
	var blobs int
	for _, l := range s.proxyRequests(t, start) {
		if l.Repo == "acme/signed" && strings.Contains(l.Path, "/blobs/") && l.Status == 200 {
			blobs++
			if l.Cache != "hit" {
				t.Errorf("%s %s: cache %q; want hit", l.Method, l.Path, l.Cache)
			}
		}
	}
	if blobs < 3 { // config and two layers
		t.Errorf("trustproxy logged %d blob requests for the pull; want at least 3", blobs)
	}
}

// waitReadyz polls /readyz until it answers 503 with a body containing want.
func waitReadyz(ctx context.Context, url, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
			if resp.StatusCode == http.StatusOK {
				return last, fmt.Errorf("GET %s: ready; want not ready with %q", url, want)
			}
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), want) {
				return last, nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("GET %s: no 503 naming %q; last answer: %s", url, want, last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}
