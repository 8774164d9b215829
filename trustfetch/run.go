package trustfetch

import (
	"context"
	"math/rand/v2"
	"time"
)

// Run refreshes every Refresh interval until ctx is done. A failed refresh
// is retried sooner, with exponential backoff from one second up to the
// interval. The interval is shortened when the trust data would expire
// before the next refresh, so that a healthy server never lets it lapse.
func (r *Repository) Run(ctx context.Context) {
	failures := 0
	if r.current.Load() == nil {
		failures = 1 // Open's attempt failed: retry soon
	}
	for first := true; ; first = false {
		delay := r.nextDelay(failures)
		if first && r.refreshNow {
			delay = 0 // a background Open did not refresh
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, max(r.cfg.Refresh, time.Minute))
		err := r.Refresh(rctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
		default:
			failures = 0
		}
	}
}

func (r *Repository) nextDelay(failures int) time.Duration {
	d := r.cfg.Refresh
	if failures > 0 {
		if failures <= 30 {
			d = min(d, time.Second<<(failures-1))
		}
	} else if ix := r.current.Load(); ix != nil {
		if half := ix.expires.Sub(r.now()) / 2; half < d {
			d = max(half, min(d, time.Second))
		}
	}
	// Up to 10% jitter keeps replicas from refreshing in lockstep.
	if j := int64(d / 10); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return d
}
