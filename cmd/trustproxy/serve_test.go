package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// startFromConfig writes yaml to a file, assembles trustproxy from it exactly
// as `trustproxy serve` does and serves on a loopback port; it returns
// host:port.
func startFromConfig(t *testing.T, yaml string) string {
	t.Helper()
	return startFromConfigWith(t, yaml, nil)
}

// startFromConfigWith is startFromConfig with the command's adjustment of
// the configuration (serve's is func(c) { c.backgroundTrust = true }).
func startFromConfigWith(t *testing.T, yaml string, tweak func(*fileConfig)) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if tweak != nil {
		tweak(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in, err := assemble(ctx, c, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("assemble: %v", err)
	}
	addr, _ := serveInstance(t, ctx, cancel, in)
	return addr
}

// serveInstance runs serveOn for in on a loopback port until stop (or the
// test's end) cancels ctx; it returns host:port. stop waits for shutdown.
func serveInstance(t *testing.T, ctx context.Context, cancel context.CancelFunc, in *instance) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveOn(ctx, in, ln, nil) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("server did not shut down")
			}
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func TestExampleConfigLoads(t *testing.T) {
	if _, err := loadConfig("../../configs/example.yaml"); err != nil {
		t.Fatal(err)
	}
}
