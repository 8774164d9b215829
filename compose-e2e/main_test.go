// Package e2e drives real clients (the Docker engine, containerd's ctr,
// podman, skopeo, crane) through trustproxy running as a container next to
// an upstream registry and a TUF repository server, the way users deploy it.
//
// TestMain builds the images (build-images.sh), brings the compose stack up,
// seeds the upstream, signs with the publisher CLI and tears everything down
// at the end, so `go test ./compose-e2e/` is the whole run and run.sh is a
// thin wrapper. E2E_KEEP=1 leaves the stack up and prints how to reach it.
//
// Without a Docker engine the tests skip with one line, except in CI
// (CI=true), where they fail.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// The stack every test uses; set up once by TestMain.
var (
	e2e *stack
	// e2eSkip says why the stack cannot run here (no engine): tests skip,
	// or fail in CI.
	e2eSkip string
	// e2eErr is a setup failure: tests fail with it.
	e2eErr error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		e2eSkip = "compose-e2e: -short: the compose stack is not started"
		return m.Run()
	}
	if why := engineMissing(); why != "" {
		e2eSkip = "compose-e2e: " + why
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := newStack(ctx)
	if err != nil {
		e2eErr = err
		return m.Run()
	}
	keep := os.Getenv("E2E_KEEP") == "1"
	if err := s.up(ctx); err != nil {
		e2eErr = err
	} else {
		e2e = s
		logf("stack ready in %s: proxy %s, upstream %s", time.Since(start).Round(time.Second), s.proxy, s.registry)
	}
	code := m.Run()
	// Tear down with a context of its own: the setup's may have run out.
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer tcancel()
	if code != 0 || e2eErr != nil {
		s.dumpLogs(tctx)
	}
	if keep {
		s.printKeep()
		return code
	}
	if err := s.down(tctx); err != nil {
		logf("tear down: %v", err)
		if code == 0 {
			code = 1
		}
	}
	logf("total %s", time.Since(start).Round(time.Second))
	return code
}

// needStack returns the running stack, or ends the test: skipped (failed in
// CI) without an engine, failed when setting the stack up failed.
func needStack(t *testing.T) *stack {
	t.Helper()
	switch {
	case e2eSkip != "":
		testenv.SkipOrFail(t, e2eSkip)
	case e2eErr != nil:
		t.Fatalf("compose stack: %v", e2eErr)
	case e2e == nil:
		t.Fatal("compose stack: not started")
	}
	return e2e
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "compose-e2e: "+format+"\n", a...)
}
