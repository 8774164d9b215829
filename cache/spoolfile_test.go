package cache

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"
)

// On Linux a follower gets a descriptor of its own on the unlinked spool,
// at its own offset, so the kernel can send the spool to its socket; the
// download's writes stay visible through it.
func TestReopenSpool(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the spool is reopened through /proc/self/fd on Linux only")
	}
	ctx := context.Background()
	c, _ := newTestCache(t, inmemoryDriver(), Options{})
	data, dgst := randomBytes(t, 1<<20)
	gate := make(chan struct{})
	up := &upstream{body: func(ctx context.Context) io.Reader {
		return &gatedReader{ctx: ctx, data: data, hold: 300 << 10, gate: gate}
	}, size: int64(len(data))}
	b, err := c.Blob(ctx, dgst, int64(len(data)), up.fetch)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.NewReader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := rc.(*tailReader)
	if _, err := tr.next(); err != nil { // some bytes are in the spool
		t.Fatal(err)
	}
	f := tr.dl.reopenSpool(1000)
	if f == nil {
		t.Fatal("the spool could not be reopened")
	}
	defer f.Close()
	got := make([]byte, 5000)
	if _, err := io.ReadFull(f, got); err != nil || !bytes.Equal(got, data[1000:6000]) {
		t.Fatalf("reopened spool at 1000: %v", err)
	}
	close(gate)
	all, err := readAll(rc)
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("follower: %d bytes, %v", len(all), err)
	}
}
