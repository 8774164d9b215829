package cache

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// endlessReader is an upstream body that never ends, as a hostile upstream's
// chunked response can; it stops only when the fetch's context does.
type endlessReader struct{ ctx context.Context }

func (r endlessReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// A detached download of unknown size whose last reader leaves is
// cancelled: nothing else bounds it, and nobody waits for it. A download of
// known size runs on (it is bounded, and caches the blob).
func TestAbandonedUnknownSizeDownloadStops(t *testing.T) {
	c, reg := newTestCache(t, inmemoryDriver(), Options{})
	fetchDone := make(chan error, 1)
	up := &upstream{size: -1, body: func(ctx context.Context) io.Reader {
		context.AfterFunc(ctx, func() { fetchDone <- context.Cause(ctx) })
		return endlessReader{ctx}
	}}
	dgst := digest.FromString("never")
	b, err := c.Blob(context.Background(), dgst, -1, up.fetch)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.NewReader(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	select {
	case cause := <-fetchDone:
		if !errors.Is(cause, ErrAbandoned) {
			t.Fatalf("fetch context ended with %v; want ErrAbandoned", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the download of unknown size went on after its last reader left")
	}
	c.wg.Wait()
	if n := metricValue(t, reg, "trustproxy_cache_inflight_fetches"); n != 0 {
		t.Fatalf("in-flight fetches = %v after the abandoned download", n)
	}
}
