package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
)

// driverCase builds a real storage driver for a test; root is the directory
// behind the filesystem driver ("" for inmemory).
type driverCase struct {
	name string
	new  func(t testing.TB) (d storagedriver.StorageDriver, root string)
}

var driverCases = []driverCase{
	{"inmemory", func(testing.TB) (storagedriver.StorageDriver, string) { return inmemory.New(), "" }},
	{"filesystem", func(t testing.TB) (storagedriver.StorageDriver, string) {
		root := t.TempDir()
		return fsDriver(root), root
	}},
}

func fsDriver(root string) storagedriver.StorageDriver {
	return filesystem.New(filesystem.DriverParameters{RootDirectory: root, MaxThreads: 100})
}

func newTestCache(t testing.TB, d storagedriver.StorageDriver, opts Options) (*Cache, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if opts.Registerer == nil {
		opts.Registerer = reg
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = t.TempDir()
	}
	c, err := New(context.Background(), d, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, reg
}

func randomBytes(t testing.TB, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

// upstream serves one body per fetch call and counts the calls.
type upstream struct {
	calls atomic.Int64
	body  func(ctx context.Context) io.Reader // a fresh body per call
	size  int64                               // Content-Length reported, -1 unknown
	err   error                               // returned instead of a body
}

func (u *upstream) fetch(ctx context.Context) (io.ReadCloser, int64, error) {
	u.calls.Add(1)
	if u.err != nil {
		return nil, 0, u.err
	}
	return io.NopCloser(u.body(ctx)), u.size, nil
}

func staticUpstream(b []byte) *upstream {
	return &upstream{body: func(context.Context) io.Reader { return bytes.NewReader(b) }, size: int64(len(b))}
}

// gatedReader serves data but stops at hold until gate is closed, or fails
// when ctx (the fetch's context) ends, as an HTTP body does.
type gatedReader struct {
	ctx  context.Context
	data []byte
	hold int
	gate <-chan struct{}
	pos  int
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.pos == g.hold {
		select {
		case <-g.gate:
		case <-g.ctx.Done():
			return 0, g.ctx.Err()
		}
	}
	end := len(g.data)
	if g.pos < g.hold {
		end = g.hold
	}
	if g.pos >= end {
		return 0, io.EOF
	}
	n := copy(p, g.data[g.pos:end])
	g.pos += n
	return n, nil
}

// failingReader serves data and then fails with err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// readAll reads r to the end and reports what it got and why it stopped.
func readAll(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	_, err := io.Copy(&buf, r)
	return buf.Bytes(), err
}

func readBlob(t testing.TB, b Blob, offset int64) ([]byte, error) {
	t.Helper()
	rc, err := b.NewReader(context.Background(), offset)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAll(rc)
}

// metricValue returns the value of a counter or gauge (with the given label
// pairs) from reg, or 0 if it has not been observed.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// driverFiles lists every file in the driver under root paths.
func driverFiles(t testing.TB, d storagedriver.StorageDriver) []string {
	t.Helper()
	var files []string
	for _, root := range []string{blobsRoot, manifestsRoot, stagingRoot} {
		err := d.Walk(context.Background(), root, func(fi storagedriver.FileInfo) error {
			if !fi.IsDir() {
				files = append(files, fi.Path())
			}
			return nil
		})
		if err != nil && !isPathNotFound(err) {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	return files
}

// diskFiles lists every regular file below dir on disk.
func diskFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			files = append(files, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// prngReader is a deterministic, allocation-free stream of n pseudo-random
// bytes, for blobs too large to hold in memory.
type prngReader struct {
	src  *mrand.ChaCha8
	left int64
}

func newPRNG(seed byte, n int64) *prngReader {
	var s [32]byte
	s[0] = seed
	return &prngReader{src: mrand.NewChaCha8(s), left: n}
}

func (r *prngReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, _ := r.src.Read(p)
	r.left -= int64(n)
	return n, nil
}

func prngDigest(t testing.TB, seed byte, n int64) digest.Digest {
	t.Helper()
	d, err := digest.FromReader(newPRNG(seed, n))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// progressWriter counts bytes and signals once at least at bytes arrived.
type progressWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	at   int
	once sync.Once
	hit  chan struct{}
}

func newProgressWriter(at int) *progressWriter {
	return &progressWriter{at: at, hit: make(chan struct{})}
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.Len() >= w.at {
		w.once.Do(func() { close(w.hit) })
	}
	return len(p), nil
}

func (w *progressWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

func inmemoryDriver() storagedriver.StorageDriver { return inmemory.New() }

// runGC runs a collection and lets cleanups (runtime.AddCleanup) run.
func runGC() {
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// drains are the ways a client takes a blob from a reader: io.Copy into a
// plain writer (Read, or WriteTo through user space), and WriteTo into a
// TCP connection, the way net/http hands a follower's response to the
// kernel (sendfile from the spool). run returns what reached w and the
// reader's error.
var drains = []struct {
	name string
	run  func(t testing.TB, rc io.Reader, w io.Writer) ([]byte, error)
}{
	{"copy", func(_ testing.TB, rc io.Reader, w io.Writer) ([]byte, error) {
		_, err := io.Copy(w, rc)
		return w.(interface{ Bytes() []byte }).Bytes(), err
	}},
	{"tcp", func(t testing.TB, rc io.Reader, w io.Writer) ([]byte, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Error(err)
			return nil, err
		}
		defer ln.Close()
		received := make(chan struct{})
		go func() {
			defer close(received)
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			io.Copy(w, conn)
		}()
		conn, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return nil, err
		}
		if _, ok := conn.(io.ReaderFrom); !ok {
			t.Error("a TCP connection that cannot read from a file")
		}
		_, err = rc.(io.WriterTo).WriteTo(conn)
		conn.Close()
		<-received
		return w.(interface{ Bytes() []byte }).Bytes(), err
	}},
}
