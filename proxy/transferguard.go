package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// stallGuard fails a body whose upstream stops sending for longer than d,
// so a dying upstream never holds a client (or a coalesced download) forever.
type stallGuard struct {
	rc    io.ReadCloser
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	timed bool
}

func newStallGuard(rc io.ReadCloser, d time.Duration) io.ReadCloser {
	g := &stallGuard{rc: rc, d: d}
	g.timer = time.AfterFunc(d, func() {
		g.mu.Lock()
		g.timed = true
		g.mu.Unlock()
		rc.Close()
	})
	return g
}

var errStalled = errors.New("upstream stalled")

func (g *stallGuard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	g.timer.Reset(g.d)
	if err != nil && err != io.EOF {
		g.mu.Lock()
		timed := g.timed
		g.mu.Unlock()
		if timed {
			return n, fmt.Errorf("%w: no data for %s: %v", errStalled, g.d, err)
		}
	}
	return n, err
}

func (g *stallGuard) Close() error {
	g.timer.Stop()
	return g.rc.Close()
}

// transferBounds bound one blob download from a hostile or dying upstream:
// a stall (no byte for stall), a drip (average below minRate once grace has
// passed), a download that never ends (deadline) and a body of unknown size
// that never ends (maxBytes).
type transferBounds struct {
	maxBytes int64
	deadline time.Duration
	minRate  int64 // bytes per second
	stall    time.Duration
	grace    time.Duration // rateGrace; tests shorten it
}

// rateGrace is how long a transfer may run before its average rate counts:
// connection set-up and slow starts are not drips.
const rateGrace = time.Minute

var (
	errTooLarge = errors.New("upstream blob exceeds maxBlobBytes")
	errTooSlow  = errors.New("upstream transfer too slow")
)

// boundedBody enforces transferBounds on a body. The deadline itself is the
// context of the request that produced the body (cancel stops it); Close
// releases that context.
type boundedBody struct {
	rc      io.ReadCloser
	b       transferBounds
	limit   int64 // -1: the size is known and checked by the cache
	cancel  func()
	start   time.Time
	now     func() time.Time
	n       int64
	expired func() bool
}

func (g *boundedBody) Read(p []byte) (int, error) {
	if g.expired() {
		return 0, fmt.Errorf("%w: the download took longer than %s (blobTimeout)", errTooSlow, g.b.deadline)
	}
	k, err := g.rc.Read(p)
	g.n += int64(k)
	if g.limit >= 0 && g.n > g.limit {
		return 0, fmt.Errorf("%w: more than %d bytes of a blob of unknown size", errTooLarge, g.limit)
	}
	if err == nil {
		if el := g.now().Sub(g.start); el > g.b.grace && float64(g.n)/el.Seconds() < float64(g.b.minRate) {
			return 0, fmt.Errorf("%w: %d bytes in %s is below %d bytes/s (minBytesPerSecond)",
				errTooSlow, g.n, el.Round(time.Second), g.b.minRate)
		}
	}
	if err != nil && err != io.EOF && g.expired() {
		return k, fmt.Errorf("%w: the download took longer than %s (blobTimeout): %v", errTooSlow, g.b.deadline, err)
	}
	return k, err
}

func (g *boundedBody) Close() error {
	err := g.rc.Close()
	g.cancel()
	return err
}

// bound wraps a blob response body in the bounds. size is what the approved
// manifest says (-1: unknown); the byte bound applies only when neither it
// nor the upstream's Content-Length is known, since a known size is enforced
// exactly by the cache. cancel ends ctx, the request's deadline; the body's
// Close calls it.
func (b transferBounds) bound(ctx context.Context, cancel func(), resp *http.Response, size int64) (io.ReadCloser, error) {
	limit := int64(-1)
	if size < 0 {
		if resp.ContentLength > b.maxBytes {
			drain(resp.Body)
			cancel()
			return nil, fmt.Errorf("%w: upstream announces %d bytes, the bound for blobs of unknown size is %d", errTooLarge, resp.ContentLength, b.maxBytes)
		}
		if resp.ContentLength < 0 {
			limit = b.maxBytes
		}
	}
	return &boundedBody{rc: resp.Body, b: b, limit: limit, cancel: cancel, start: time.Now(), now: time.Now,
		expired: func() bool { return ctx.Err() != nil }}, nil
}
