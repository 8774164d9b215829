package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// Every way upstream can send the wrong bytes: readers (the first caller's
// and a follower's) get an error wrapping the reason, never the final byte,
// nothing is committed, the failure is counted, and the next caller fetches
// again.
func TestBlobRefusesBadUpstreamBytes(t *testing.T) {
	const size = 1 << 20
	boom := errors.New("connection reset by peer")
	tests := []struct {
		name     string
		expected int64                    // size the caller expects (-1 unknown)
		clen     int64                    // Content-Length upstream reports
		body     func(good []byte) []byte // what upstream sends
		fail     error                    // body ends with this error instead of EOF
		want     error                    // error readers must see
		metric   string
	}{
		{"tampered byte, size known", size, size, func(g []byte) []byte { b := bytes.Clone(g); b[size/2] ^= 1; return b }, nil, ErrDigestMismatch, "trustproxy_cache_digest_mismatches_total"},
		{"tampered last byte, size unknown", -1, -1, func(g []byte) []byte { b := bytes.Clone(g); b[size-1] ^= 1; return b }, nil, ErrDigestMismatch, "trustproxy_cache_digest_mismatches_total"},
		{"truncated, size from caller", size, -1, func(g []byte) []byte { return g[:size-100] }, nil, ErrSizeMismatch, "trustproxy_cache_size_mismatches_total"},
		{"truncated, size from Content-Length", -1, size, func(g []byte) []byte { return g[:size-1] }, nil, ErrSizeMismatch, "trustproxy_cache_size_mismatches_total"},
		{"overlong body", size, -1, func(g []byte) []byte { return append(bytes.Clone(g), 'x') }, nil, ErrSizeMismatch, "trustproxy_cache_size_mismatches_total"},
		{"upstream error mid-stream", size, size, func(g []byte) []byte { return g[:size/2] }, boom, boom, "trustproxy_cache_upstream_fetch_errors_total"},
		{"upstream error after every byte", size, size, func(g []byte) []byte { return g }, boom, boom, "trustproxy_cache_upstream_fetch_errors_total"},
	}
	for _, tt := range tests {
		for _, dc := range driverCases {
			for _, drain := range drains {
				t.Run(tt.name+"/"+dc.name+"/"+drain.name, func(t *testing.T) {
					ctx := context.Background()
					d, _ := dc.new(t)
					c, reg := newTestCache(t, d, Options{})
					good, dgst := randomBytes(t, size)
					sent := tt.body(good)
					hold := len(sent) - 1
					gate := make(chan struct{})
					bad := &upstream{
						body: func(ctx context.Context) io.Reader {
							g := &gatedReader{ctx: ctx, data: sent, hold: hold, gate: gate}
							if tt.fail != nil {
								return &failingReader{r: g, err: tt.fail}
							}
							return g
						},
						size: tt.clen,
					}

					// Two readers: the caller that starts the download and one that joins it.
					type result struct {
						got []byte
						err error
					}
					results := make(chan result, 2)
					for range 2 {
						b, err := c.Blob(ctx, dgst, tt.expected, bad.fetch)
						if err != nil {
							t.Fatal(err)
						}
						rc, err := b.NewReader(ctx, 0)
						if err != nil {
							t.Fatal(err)
						}
						// What may be released before verification: all that
						// arrived except the final byte of the known size, or, with
						// no size known, all but the last byte that arrived.
						releasable := hold - 1
						if known := max(tt.expected, tt.clen); known >= 0 {
							releasable = min(hold, int(known)-1)
						}
						w := newProgressWriter(releasable)
						go func() {
							defer rc.Close()
							got, err := drain.run(t, rc, w)
							results <- result{got, err}
						}()
						// Everything upstream sent so far that may be released is
						// delivered before the last chunk arrives...
						<-w.hit
					}
					close(gate) // ...then the rest arrives and verification fails.
					for range 2 {
						r := <-results
						if !errors.Is(r.err, tt.want) {
							t.Fatalf("reader error %v, want %v", r.err, tt.want)
						}
						if len(r.got) >= size {
							t.Fatalf("reader got %d bytes of a %d byte blob before the error: the final byte escaped verification", len(r.got), size)
						}
						if !bytes.Equal(r.got, sent[:len(r.got)]) {
							t.Fatal("reader got bytes upstream never sent")
						}
					}
					c.wg.Wait()
					if _, err := c.StatBlob(ctx, dgst); !errors.Is(err, ErrNotFound) {
						t.Fatalf("bad blob committed: StatBlob %v", err)
					}
					if files := driverFiles(t, d); len(files) != 0 {
						t.Fatalf("bad blob left objects in storage: %v", files)
					}
					if got := metricValue(t, reg, tt.metric); got != 1 {
						t.Errorf("%s = %v, want 1", tt.metric, got)
					}
					if c.Size() != 0 {
						t.Errorf("Size() = %d after a refused blob", c.Size())
					}

					good2 := staticUpstream(good)
					b, err := c.Blob(ctx, dgst, size, good2.fetch)
					if err != nil {
						t.Fatal(err)
					}
					if got, err := readBlob(t, b, 0); err != nil || !bytes.Equal(got, good) {
						t.Fatalf("good fetch after a refused one: %d bytes, %v", len(got), err)
					}
					if good2.calls.Load() != 1 {
						t.Fatal("a refused download was remembered instead of fetched again")
					}
				})
			}
		}
	}
}

// A Content-Length that contradicts the expected size is refused before any
// byte is read.
func TestBlobContentLengthContradictsExpectedSize(t *testing.T) {
	c, reg := newTestCache(t, inmemoryDriver(), Options{})
	data, dgst := randomBytes(t, 1000)
	up := staticUpstream(data)
	up.size = 999
	if _, err := c.Blob(context.Background(), dgst, 1000, up.fetch); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("Blob: %v, want ErrSizeMismatch", err)
	}
	c.wg.Wait() // the download goroutine counts the failure after Blob returned
	if got := metricValue(t, reg, "trustproxy_cache_size_mismatches_total"); got != 1 {
		t.Errorf("size mismatches = %v, want 1", got)
	}
}

// A follower that expects a different size than the caller who started the
// download is held to its own expectation.
func TestBlobFollowerWithOtherExpectedSize(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(t, inmemoryDriver(), Options{})
	data, dgst := randomBytes(t, 4096)
	gate := make(chan struct{})
	up := &upstream{body: func(ctx context.Context) io.Reader {
		return &gatedReader{ctx: ctx, data: data, hold: 100, gate: gate}
	}, size: -1}
	first, err := c.Blob(ctx, dgst, -1, up.fetch)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := c.Blob(ctx, dgst, 4000, up.fetch)
	if err != nil {
		t.Fatal(err)
	}
	if wrong.Size() != 4000 {
		t.Fatalf("follower Size() = %d, want its own expected 4000", wrong.Size())
	}
	close(gate)
	got, err := readBlob(t, wrong, 0)
	if !errors.Is(err, ErrSizeMismatch) || len(got) >= 4000 {
		t.Fatalf("follower expecting 4000 bytes of a 4096 byte blob: got %d bytes, %v", len(got), err)
	}
	if got, err := readBlob(t, first, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first caller: %d bytes, %v", len(got), err)
	}
}
