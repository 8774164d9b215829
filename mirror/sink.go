package mirror

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"
)

// sink receives the files of an export as they are produced, streaming:
// nothing is held in memory beyond one copy buffer.
type sink interface {
	// put writes a file of exactly size bytes from r.
	put(name string, size int64, r io.Reader) error
	// has reports whether the file was already written (or, for a
	// directory, already present from an earlier export).
	has(name string) bool
	// parallel is how many puts may run at once.
	parallel() int
	close() error
}

// copyBufferSize is what blobs are copied through: 32 times fewer read
// and write system calls than io.Copy's 32 KiB (the HTTP body's reader
// reads straight into a buffer this large).
const copyBufferSize = 1 << 20

// bufferPool hands out copy buffers to a sink's concurrent puts.
type bufferPool struct{ p sync.Pool }

// copy copies src to dst through a pooled buffer. Wrapping dst hides its
// ReadFrom, which would fall back to a 32 KiB buffer for a source it
// cannot splice from.
func (bp *bufferPool) copy(dst io.Writer, src io.Reader) (int64, error) {
	b, _ := bp.p.Get().(*[]byte)
	if b == nil {
		buf := make([]byte, copyBufferSize)
		b = &buf
	}
	defer bp.p.Put(b)
	return io.CopyBuffer(struct{ io.Writer }{dst}, src, *b)
}

// dirSink writes an export directory; each file appears complete or not
// at all (written aside, then renamed).
type dirSink struct {
	bufs bufferPool
	root string
	mu   sync.Mutex
	seen map[string]bool
}

func (d *dirSink) parallel() int { return 4 }

func newDirSink(root string) (*dirSink, error) {
	if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(blobsDir)), 0o755); err != nil {
		return nil, fmt.Errorf("create export directory: %w", err)
	}
	return &dirSink{root: root, seen: map[string]bool{}}, nil
}

func (d *dirSink) has(name string) bool {
	d.mu.Lock()
	seen := d.seen[name]
	d.mu.Unlock()
	if seen {
		return true
	}
	_, err := os.Stat(filepath.Join(d.root, filepath.FromSlash(name)))
	return err == nil && path.Dir(name) == blobsDir // blobs are content-addressed; other files are rewritten
}

func (d *dirSink) put(name string, size int64, r io.Reader) error {
	p := filepath.Join(d.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return err
	}
	n, err := d.bufs.copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: wrote %d bytes, expected %d", name, n, size)
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	d.mu.Lock()
	d.seen[name] = true
	d.mu.Unlock()
	return nil
}

func (d *dirSink) close() error { return nil }

// tarSink writes the export as one tar stream (the layout skopeo reads as
// oci-archive:). Directory entries are written once, before their files.
type tarSink struct {
	bufs bufferPool
	tw   *tar.Writer
	dirs map[string]bool
	seen map[string]bool
	now  time.Time
}

func newTarSink(w io.Writer) *tarSink {
	return &tarSink{tw: tar.NewWriter(w), dirs: map[string]bool{}, seen: map[string]bool{}, now: time.Now()}
}

func (t *tarSink) has(name string) bool { return t.seen[name] }

func (t *tarSink) parallel() int { return 1 }

func (t *tarSink) mkdir(dir string) error {
	if dir == "." || t.dirs[dir] {
		return nil
	}
	if err := t.mkdir(path.Dir(dir)); err != nil {
		return err
	}
	t.dirs[dir] = true
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: t.now, Format: tar.FormatPAX})
}

func (t *tarSink) put(name string, size int64, r io.Reader) error {
	if err := t.mkdir(path.Dir(name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: t.now, Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	n, err := t.bufs.copy(t.tw, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, expected %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	t.seen[name] = true
	return nil
}

func (t *tarSink) close() error {
	return errors.Join(t.tw.Close())
}
