package cache

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Fifty clients ask for one cold blob at once: upstream sees one fetch, and
// everyone gets the same, verified bytes. The body is held back until all
// fifty have joined, so the overlap is certain rather than timing-dependent.
func TestBlobCoalescesConcurrentMisses(t *testing.T) {
	for _, dc := range driverCases {
		t.Run(dc.name, func(t *testing.T) {
			const callers = 50
			d, _ := dc.new(t)
			c, reg := newTestCache(t, d, Options{})
			data, dgst := randomBytes(t, 2<<20+3)
			gate := make(chan struct{})
			up := &upstream{
				body: func(ctx context.Context) io.Reader {
					return &gatedReader{ctx: ctx, data: data, hold: 64 << 10, gate: gate}
				},
				size: int64(len(data)),
			}

			var joined sync.WaitGroup
			joined.Add(callers)
			results := make([]digest.Digest, callers)
			errs := make([]error, callers)
			var done sync.WaitGroup
			for i := range callers {
				done.Go(func() {
					b, err := c.Blob(context.Background(), dgst, int64(len(data)), up.fetch)
					joined.Done()
					if err != nil {
						errs[i] = err
						return
					}
					rc, err := b.NewReader(context.Background(), 0)
					if err != nil {
						errs[i] = err
						return
					}
					defer rc.Close()
					results[i], errs[i] = digest.FromReader(rc)
				})
			}
			joined.Wait()
			close(gate)
			done.Wait()

			if n := up.calls.Load(); n != 1 {
				t.Fatalf("fetch called %d times for %d concurrent callers, want 1", n, callers)
			}
			for i := range callers {
				if errs[i] != nil || results[i] != dgst {
					t.Fatalf("caller %d: read %s, err %v", i, results[i], errs[i])
				}
			}
			if got := metricValue(t, reg, "trustproxy_cache_coalesced_waiters_total"); got != callers-1 {
				t.Errorf("coalesced waiters = %v, want %d", got, callers-1)
			}
			c.wg.Wait()
			if _, err := c.StatBlob(context.Background(), dgst); err != nil {
				t.Fatalf("not committed: %v", err)
			}
		})
	}
}
