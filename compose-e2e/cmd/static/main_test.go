package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "metadata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "metadata", "timestamp.json"), []byte(`{"v":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, root) }()

	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/metadata/timestamp.json", 200, `{"v":1}`},
		{"/metadata/2.snapshot.json", 404, "404 page not found"},
		{"/../etc/passwd", 404, ""},
	} {
		resp, err := http.Get("http://" + ln.Addr().String() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s: %d %q; want %d containing %q", tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
		if cc := resp.Header.Get("Cache-Control"); tc.status == 200 && cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q; want no-store (TUF clients must see new timestamps)", tc.path, cc)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestRunRejectsBadRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{filepath.Join(t.TempDir(), "missing"), file} {
		if err := run(context.Background(), "127.0.0.1:0", root); err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("run with root %s: %v; want an error about the root", root, err)
		}
	}
}
