package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Environment of the child process TestCrashRecovery re-runs itself as.
const (
	crashPhaseEnv = "TRUSTPROXY_CACHE_CRASH_PHASE"
	crashRootEnv  = "TRUSTPROXY_CACHE_CRASH_ROOT"
	crashSpoolEnv = "TRUSTPROXY_CACHE_CRASH_SPOOL"
	crashReady    = "CRASH-POINT-REACHED"
	crashBlobSize = 4 << 20
)

var crashManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)

// TestCrashRecovery kills (SIGKILL) a process that uses a filesystem cache at
// each point of a write: mid-download, mid-staging-write, between staging
// and the final move, and between a manifest's media type and its data.
// Reopening the same root must show nothing partial, say ErrNotFound, leave
// no spool or staging debris, and fetch afresh successfully.
func TestCrashRecovery(t *testing.T) {
	if phase := os.Getenv(crashPhaseEnv); phase != "" {
		crashChild(phase, os.Getenv(crashRootEnv), os.Getenv(crashSpoolEnv))
		return
	}
	data := crashBlob()
	dgst := digest.FromBytes(data)
	mDgst := digest.FromBytes(crashManifest)
	tests := []struct {
		phase string
		// what must be on disk at the moment of the kill, proving the
		// child got where the phase says
		atKill func(t *testing.T, root, spool string)
	}{
		{"download", func(t *testing.T, root, spool string) {
			if files := diskFiles(t, root); len(files) != 0 {
				t.Fatalf("objects in storage during the download: %v", files)
			}
		}},
		{"staging", func(t *testing.T, root, spool string) {
			assertOnlyStaging(t, root, func(size int64) bool { return size > 0 && size < crashBlobSize })
		}},
		{"move", func(t *testing.T, root, spool string) {
			assertOnlyStaging(t, root, func(size int64) bool { return size == crashBlobSize })
		}},
		{"manifest", func(t *testing.T, root, spool string) {
			files := diskFiles(t, root)
			if len(files) != 2 || files[0] != (key{kindManifest, mDgst}).mediaTypePath() || !strings.HasPrefix(files[1], stagingRoot+"/") {
				t.Fatalf("at the kill, want the manifest's media type moved and its data staged, got %v", files)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.phase, func(t *testing.T) {
			root, spool := t.TempDir(), t.TempDir()
			runChildUntilCrashPoint(t, tt.phase, root, spool)
			tt.atKill(t, root, spool)
			if files := diskFiles(t, spool); len(files) != 0 {
				t.Fatalf("spool files survived the kill: %v", files)
			}

			ctx := context.Background()
			c, _ := newTestCache(t, fsDriver(root), Options{SpoolDir: spool})
			if _, err := c.StatBlob(ctx, dgst); !errors.Is(err, ErrNotFound) {
				t.Fatalf("StatBlob after crash: %v, want ErrNotFound", err)
			}
			if _, _, err := c.GetManifest(ctx, mDgst); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetManifest after crash: %v, want ErrNotFound", err)
			}
			if files := diskFiles(t, root); len(files) != 0 {
				t.Fatalf("debris after reopening: %v", files)
			}
			if c.Size() != 0 {
				t.Fatalf("Size() after crash = %d", c.Size())
			}

			up := staticUpstream(data)
			b, err := c.Blob(ctx, dgst, crashBlobSize, up.fetch)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readBlob(t, b, 0); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("fresh fetch after crash: %d bytes, %v", len(got), err)
			}
			c.wg.Wait()
			if n, err := c.StatBlob(ctx, dgst); err != nil || n != crashBlobSize {
				t.Fatalf("fresh fetch not committed: %d, %v", n, err)
			}
			must(t, c.PutManifest(ctx, mDgst, ociManifest, crashManifest))
			if _, got, err := c.GetManifest(ctx, mDgst); err != nil || !bytes.Equal(got, crashManifest) {
				t.Fatalf("manifest after crash: %v", err)
			}
		})
	}
}

func assertOnlyStaging(t *testing.T, root string, sizeOK func(int64) bool) {
	t.Helper()
	files := diskFiles(t, root)
	if len(files) != 1 || !strings.HasPrefix(files[0], stagingRoot+"/") {
		t.Fatalf("at the kill, want exactly one staging object, got %v", files)
	}
	fi, err := os.Stat(filepath.Join(root, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !sizeOK(fi.Size()) {
		t.Fatalf("staging object has %d bytes at the kill", fi.Size())
	}
}

func crashBlob() []byte {
	data := make([]byte, crashBlobSize)
	io.ReadFull(newPRNG(7, crashBlobSize), data) // cannot fail: the stream has exactly that many bytes
	return data
}

func runChildUntilCrashPoint(t *testing.T, phase, root, spool string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), crashPhaseEnv+"="+phase, crashRootEnv+"="+root, crashSpoolEnv+"="+spool)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A guard against a child that never gets there, not a timing assertion.
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer guard.Stop()
	ready := false
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == crashReady {
			ready = true
			break
		}
		lines = append(lines, sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	waitErr := cmd.Wait()
	if !ready {
		t.Fatalf("child never reached the crash point (%v):\n%s\n%s", waitErr, strings.Join(lines, "\n"), stderr.String())
	}
	if !strings.Contains(fmt.Sprint(waitErr), "killed") {
		t.Fatalf("child was not killed: %v", waitErr)
	}
}

// crashChild runs in the child process: it drives the cache to the crash
// point of its phase, says so on stdout, and waits to be killed.
func crashChild(phase, root, spool string) {
	ctx := context.Background()
	reached := func() {
		fmt.Println(crashReady)
		time.Sleep(time.Hour)
	}
	fail := func(err error) {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	d := &hookDriver{StorageDriver: fsDriver(root)}
	switch phase {
	case "staging":
		d.afterWrite = func(path string, written int64) {
			if written >= crashBlobSize/2 {
				reached()
			}
		}
	case "move":
		d.beforeMove = func(src, dst string) { reached() }
	case "manifest":
		d.beforeMove = func(src, dst string) {
			if strings.HasSuffix(dst, "/"+dataName) {
				reached()
			}
		}
	}
	c, err := New(ctx, d, Options{SpoolDir: spool})
	if err != nil {
		fail(err)
	}
	if phase == "manifest" {
		fail(c.PutManifest(ctx, digest.FromBytes(crashManifest), ociManifest, crashManifest))
	}
	data := crashBlob()
	dgst := digest.FromBytes(data)
	body := func(ctx context.Context) io.Reader { return bytes.NewReader(data) }
	if phase == "download" {
		never := make(chan struct{})
		body = func(ctx context.Context) io.Reader {
			return &gatedReader{ctx: ctx, data: data, hold: crashBlobSize / 2, gate: never}
		}
	}
	b, err := c.Blob(ctx, dgst, crashBlobSize, (&upstream{body: body, size: crashBlobSize}).fetch)
	if err != nil {
		fail(err)
	}
	rc, err := b.NewReader(ctx, 0)
	if err != nil {
		fail(err)
	}
	w := newProgressWriter(crashBlobSize/2 - 1)
	go io.Copy(w, rc)
	<-w.hit
	if phase == "download" {
		reached()
	}
	time.Sleep(time.Hour) // the driver hook reports the crash point
}

// hookDriver is the real driver with hooks that let the child stop at an
// exact point of a write.
type hookDriver struct {
	storagedriver.StorageDriver
	afterWrite func(path string, written int64)
	beforeMove func(src, dst string)
}

func (h *hookDriver) Writer(ctx context.Context, path string, append bool) (storagedriver.FileWriter, error) {
	w, err := h.StorageDriver.Writer(ctx, path, append)
	if err != nil || h.afterWrite == nil {
		return w, err
	}
	return &hookWriter{FileWriter: w, path: path, after: h.afterWrite}, nil
}

func (h *hookDriver) Move(ctx context.Context, src, dst string) error {
	if h.beforeMove != nil {
		h.beforeMove(src, dst)
	}
	return h.StorageDriver.Move(ctx, src, dst)
}

type hookWriter struct {
	storagedriver.FileWriter
	path  string
	after func(path string, written int64)
}

func (w *hookWriter) Write(p []byte) (int, error) {
	n, err := w.FileWriter.Write(p)
	w.after(w.path, w.FileWriter.Size())
	return n, err
}
