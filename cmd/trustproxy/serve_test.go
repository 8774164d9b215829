package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// startFromConfig writes yaml to a file, assembles trustproxy from it exactly
// as `trustproxy serve` does and serves on a loopback port; it returns
// host:port.
func startFromConfig(t *testing.T, yaml string) string {
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
	ctx, cancel := context.WithCancel(context.Background())
	in, err := assemble(ctx, c, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("assemble: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveOn(ctx, in, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down")
		}
	})
	return ln.Addr().String()
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "listen: x\nbogus: 1\nupstreams: [{name: a, url: 'http://a'}]\nstorage: {inmemory: {}}\n", "line 2: bogus: unknown key"},
		{"unknown storage key", "storage: {inmemory: {}, colour: red}\nupstreams: [{name: a, url: 'http://a'}]\n", "storage.colour"},
		{"bad size", "storage: {inmemory: {}, maxsize: lots}\nupstreams: [{name: a, url: 'http://a'}]\n", "storage.maxsize"},
		{"no upstreams", "storage: {inmemory: {}}\n", "upstreams"},
		{"bad duration", "storage: {inmemory: {}}\nupstreams: [{name: a, url: 'http://a', timeout: soon}]\n", "duration"},
		{"trust without root", "storage: {inmemory: {}}\nstate: /tmp/x\nupstreams: [{name: a, url: 'http://a'}]\ntrust: {corp: {metadata: 'http://t'}}\n", "trust.corp.root"},
		{"filesystem without root", "storage: {filesystem: {}}\nupstreams: [{name: a, url: 'http://a'}]\n", "rootdirectory"},
		{"bad log level", "log: {level: loud}\nstorage: {inmemory: {}}\nupstreams: [{name: a, url: 'http://a'}]\n", "log.level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(tc.yaml), 0o644)
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestExampleConfigLoads(t *testing.T) {
	if _, err := loadConfig("../../configs/example.yaml"); err != nil {
		t.Fatal(err)
	}
}
