package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// serveReal runs the proxy the way serve does (NewHTTPServer, LimitListener)
// on a loopback port.
func serveReal(t *testing.T, e *env, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(e.proxy, l, zap.NewNop())
	go func() { _ = hs.Serve(LimitListener(ln, l)) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// closedWithin reads from c until the server closes it (EOF, or a reset
// when it left client bytes unread), or fails when that takes longer than
// d. It returns what the server sent.
func closedWithin(c net.Conn, d time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return string(b), fmt.Errorf("still open after %s", d)
	}
	return string(b), nil
}

// The probe from the issue, bounded: a few hundred connections announce a
// 100000-byte body on a GET and drip it one byte at a time. Each gets a
// 400 at once and its connection closed; none is held open.
func TestSlowBodyConnectionsClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	addr := serveReal(t, e, Limits{})
	const conns = 300
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /v2/open/x/manifests/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nx")
			stop := make(chan struct{})
			go func() { // drip until the server hangs up
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			got, err := closedWithin(c, 10*time.Second)
			close(stop)
			if err != nil {
				errs <- err
				return
			}
			if got == "" {
				return // reset before the answer could be read: closed all the same
			}
			if resp, rerr := http.ReadResponse(bufio.NewReader(strings.NewReader(got)), nil); rerr != nil || resp.StatusCode != 400 {
				errs <- fmt.Errorf("answer %q", got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Slow-header (slow-loris) connections are closed at the header deadline,
// and the server keeps answering other clients meanwhile.
func TestSlowHeaderConnectionsClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	addr := serveReal(t, e, Limits{HeaderTimeout: 500 * time.Millisecond})
	const conns = 300
	cs := make([]net.Conn, 0, conns)
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /v2/ HTTP/1.1\r\nHost: t\r\nX-Slow: ")
		cs = append(cs, c)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a normal client during the slow-loris: %v", err)
	}
	resp.Body.Close()
	for _, c := range cs {
		_, _ = c.Write([]byte("a")) // still dripping
		if _, err := closedWithin(c, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// Over the connection cap, a new connection waits in the accept queue
// until an earlier one ends.
func TestConnectionCap(t *testing.T) {
	e := newEnv(t, envOpts{})
	addr := serveReal(t, e, Limits{MaxConnections: 3})
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
		held = append(held, c) // kept alive: counts against the cap
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a fourth connection was served over the cap of 3 (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	if err := <-done; err != nil {
		t.Fatalf("after one connection ended: %v", err)
	}
}

// Each principal (here: each anonymous address) has its own bucket; over
// it the answer is 429 TOOMANYREQUESTS with Retry-After.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, envOpts{limits: Limits{RequestsPerSecond: 0.5, Burst: 2}})
	for i := 0; i < 2; i++ {
		resp := e.get(t, http.MethodGet, "/v2/", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i, resp.StatusCode)
		}
	}
	resp := e.get(t, http.MethodGet, "/v2/", nil)
	code, msg := ociErr(t, resp)
	if resp.StatusCode != 429 || code != "TOOMANYREQUESTS" {
		t.Fatalf("over the limit: %d %s %s", resp.StatusCode, code, msg)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
}
