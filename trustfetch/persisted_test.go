package trustfetch

import (
	"errors"
	"net"
	"testing"
	"time"
)

// A restart while the trust server is down: the persisted, verified and
// unexpired metadata keeps vouching (Degraded says why), until it expires;
// when the server is back, a refresh clears the degradation.
func TestRestartWithTrustServerDownServesPersisted(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	clock := newTestClock()
	first := r.open(srv.metadataURL(), func(c *Config, o *Options) { c.StateDir, o.Now = state, clock.Now })
	want := mustIndex(t, first)
	if first.Degraded() != nil {
		t.Fatalf("fresh repository degraded: %v", first.Degraded())
	}

	srv.down.Store(true)
	for _, background := range []bool{false, true} {
		second := r.open(srv.metadataURL(), func(c *Config, o *Options) {
			c.StateDir, o.Now, o.Background = state, clock.Now, background
		})
		ix := mustIndex(t, second)
		if ix.Versions() != want.Versions() || ix.Len() != want.Len() {
			t.Fatalf("background=%v: restarted with %+v (%d targets); want the persisted %+v (%d)", background, ix.Versions(), ix.Len(), want.Versions(), want.Len())
		}
		if _, ok := ix.Lookup("docker.io/acme/app:1.0"); !ok {
			t.Fatalf("background=%v: a persisted target is missing", background)
		}
		if second.Degraded() == nil {
			t.Fatalf("background=%v: serving persisted data without saying so", background)
		}
		if background {
			continue
		}
		clock.Set(want.Expires().Add(time.Minute))
		if _, err := second.Index(); !errors.Is(err, ErrExpired) {
			t.Fatalf("persisted data past its expiry: %v; want ErrExpired", err)
		}
		clock.Set(time.Now())
		srv.down.Store(false)
		must(t, second.Refresh(t.Context()))
		if second.Degraded() != nil {
			t.Fatalf("still degraded after a successful refresh: %v", second.Degraded())
		}
		srv.down.Store(true)
	}
}

// A background Open never waits on the trust server: one that accepts the
// connection and then says nothing does not hold it up (serve opens its
// listener right after), and Open sends it no request at all.
func TestBackgroundOpenDoesNotWaitForAStallingServer(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	mustIndex(t, r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state }))

	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	repo := r.open("http://"+stall.Addr().String()+"/metadata", func(c *Config, o *Options) { c.StateDir, o.Background = state, true })
	mustIndex(t, repo)
	select {
	case <-accepted:
		t.Fatal("a background Open contacted the trust server")
	default:
	}
}
