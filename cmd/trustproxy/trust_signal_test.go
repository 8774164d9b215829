//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// `trust add` with thousands of in-toto links stops on SIGTERM and leaves
// the repository as it was. The repository lock is held by "another
// publisher" so the signal arrives while the add is under way; the signal is
// real, delivered to this process through the context main uses.
func TestTrustAddStopsOnSIGTERM(t *testing.T) {
	reg := testenv.NewRegistry(t)
	reg.PushRandomImage(t, "acme/app:1", 512, 1, types.OCIManifestSchema1)
	dir := t.TempDir()
	repo, keys, links := filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), filepath.Join(dir, "links")
	if _, _, err := runTrustArgs(t, nil, "init", "--repo", repo, "--keys", keys); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(links, 0o755)
	for i := range 3000 {
		os.WriteFile(filepath.Join(links, fmt.Sprintf("step%d.0123abcd.link", i)), []byte(`{"signed":{}}`), 0o644)
	}
	layout := filepath.Join(dir, "root.layout")
	os.WriteFile(layout, []byte(`{"signed":{}}`), 0o644)

	lock := flock.New(filepath.Join(repo, "staging", "lock"))
	if err := lock.Lock(); err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	before := testenv.Tree(t, repo)

	ctx, stop := signalContext()
	defer stop()
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- runTrust(ctx, []string{"add", reg.Host + "/acme/app:1", "--repo", repo, "--insecure",
			"--in-toto-layout", layout, "--in-toto-links", links}, &stdout, &stderr)
	}()
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("trust add still running 30s after SIGTERM")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("trust add after SIGTERM: %v (%s%s)", err, stdout.String(), stderr.String())
	}
	if d := testenv.TreeDiff(before, testenv.Tree(t, repo)); len(d) > 0 {
		t.Errorf("trust add stopped by SIGTERM changed the repository: %v", d)
	}
}
