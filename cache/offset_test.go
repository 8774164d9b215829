package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// Range requests: a reader may start anywhere, both while the download is
// still running (before and beyond what has arrived) and once committed.
func TestBlobReaderAtOffset(t *testing.T) {
	const size = 1 << 20
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			ctx := context.Background()
			d, _ := dc.new(t)
			c, _ := newTestCache(t, d, Options{})
			data, dgst := randomBytes(t, size)
			gate := make(chan struct{})
			up := &upstream{body: func(ctx context.Context) io.Reader {
				return &gatedReader{ctx: ctx, data: data, hold: size / 2, gate: gate}
			}, size: size}
			b, err := c.Blob(ctx, dgst, size, up.fetch)
			if err != nil {
				t.Fatal(err)
			}
			offsets := []int64{0, 1, size/2 - 10, size / 2, size/2 + 12345, size - 1, size}
			type result struct {
				off int64
				got []byte
				err error
			}
			results := make(chan result, len(offsets))
			for _, off := range offsets {
				rc, err := b.NewReader(ctx, off)
				if err != nil {
					t.Fatalf("NewReader(%d) during download: %v", off, err)
				}
				go func() {
					defer rc.Close()
					got, err := readAll(rc)
					results <- result{off, got, err}
				}()
			}
			close(gate)
			for range offsets {
				r := <-results
				if r.err != nil || !bytes.Equal(r.got, data[r.off:]) {
					t.Errorf("offset %d during download: %d bytes, err %v", r.off, len(r.got), r.err)
				}
			}
			if _, err := b.NewReader(ctx, size+1); !errors.Is(err, ErrInvalidOffset) {
				t.Errorf("NewReader beyond the end during download: %v, want ErrInvalidOffset", err)
			}

			c.wg.Wait()
			hit, err := c.Blob(ctx, dgst, size, up.fetch)
			if err != nil || !hit.Cached() {
				t.Fatalf("expected a hit: %v", err)
			}
			for _, off := range offsets {
				got, err := readBlob(t, hit, off)
				if err != nil || !bytes.Equal(got, data[off:]) {
					t.Errorf("offset %d after commit: %d bytes, err %v", off, len(got), err)
				}
			}
			for _, off := range []int64{-1, size + 1} {
				if _, err := hit.NewReader(ctx, off); !errors.Is(err, ErrInvalidOffset) {
					t.Errorf("NewReader(%d) on a hit: %v, want ErrInvalidOffset", off, err)
				}
			}
		})
	}
}

// With no size known in advance, an offset beyond the end is only detected
// once the download has finished.
func TestBlobOffsetBeyondUnknownSize(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, inmemoryDriver(), Options{})
	data, dgst := randomBytes(t, 1000)
	gate := make(chan struct{})
	up := &upstream{body: func(ctx context.Context) io.Reader {
		return &gatedReader{ctx: ctx, data: data, hold: 500, gate: gate}
	}, size: -1}
	b, err := c.Blob(ctx, dgst, -1, up.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() != -1 {
		t.Fatalf("Size() = %d with nothing known, want -1", b.Size())
	}
	rc, err := b.NewReader(ctx, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	close(gate)
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrInvalidOffset) {
		t.Fatalf("read beyond the end: %v, want ErrInvalidOffset", err)
	}
}
