package trustfetch

import (
	"context"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond; the deadline only bounds a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRun(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	srv.down.Store(true)
	repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.Refresh = 20 * time.Millisecond })
	ctx, cancel := contextWithCancel(t)
	var wg sync.WaitGroup
	wg.Go(func() { repo.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	// Open failed; Run recovers once the server answers.
	srv.down.Store(false)
	waitFor(t, "the first index", func() bool { _, err := repo.Index(); return err == nil })

	// And picks up new versions on its own.
	r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("2"), "")
	r.publish()
	waitFor(t, "the new target", func() bool {
		ix, err := repo.Index()
		if err != nil {
			return false
		}
		_, ok := ix.Lookup("docker.io/acme/app:2.0")
		return ok
	})
}

func TestRunStopsWithContext(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.Refresh = time.Hour })
	ctx, cancel := contextWithCancel(t)
	done := make(chan struct{})
	go func() { repo.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestNextDelay(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	clock := newTestClock()
	repo := r.open(srv.metadataURL(), func(c *Config, o *Options) { c.Refresh, o.Now = 5*time.Minute, clock.Now })
	ix := mustIndex(t, repo)
	within := func(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
	if d := repo.nextDelay(0); !within(d, 270*time.Second, 5*time.Minute) {
		t.Errorf("healthy: %s", d)
	}
	if d := repo.nextDelay(1); !within(d, 900*time.Millisecond, time.Second) {
		t.Errorf("first retry: %s", d)
	}
	if d := repo.nextDelay(4); !within(d, 7200*time.Millisecond, 8*time.Second) {
		t.Errorf("fourth retry: %s", d)
	}
	if d := repo.nextDelay(100); !within(d, 270*time.Second, 5*time.Minute) {
		t.Errorf("retry capped at the interval: %s", d)
	}
	// Four minutes before expiry: refresh within two.
	clock.Set(ix.Expires().Add(-4 * time.Minute))
	if d := repo.nextDelay(0); !within(d, 108*time.Second, 2*time.Minute) {
		t.Errorf("near expiry: %s", d)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	return ctx, cancel
}
