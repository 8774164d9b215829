package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace made for one test (ip netns add), with only
// its loopback up. A second dockerd runs in one: whatever it does to network
// interfaces (dockerd with "bridge": "none" deletes an interface named
// docker0, the machine's own engine's bridge) stays inside.
type netns struct{ name string }

func newNetns(t *testing.T) *netns {
	t.Helper()
	needTool(t, "ip", "nsenter")
	needRoot(t)
	n := &netns{name: fmt.Sprintf("tpe2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000)}
	mustTool(t, nil, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		if out, err := toolCtx(context.Background(), nil, "ip", "netns", "del", n.name); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	})
	mustTool(t, nil, "ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// exec is the command line that runs name inside the namespace: nsenter
// enters only the network namespace (ip netns exec would also remount /sys,
// hiding the cgroup mounts dockerd needs) and execs name, so the process
// started is name itself and its PID stops it.
func (n *netns) exec(name string, args ...string) (string, []string) {
	return "nsenter", append([]string{"--net=/run/netns/" + n.name, name}, args...)
}

// listen opens a TCP listener on addr inside the namespace. The socket is
// created on a thread switched into the namespace and stays there; the
// thread is switched back, or discarded if it cannot be.
func (n *netns) listen(addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer home.Close()
		target, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter netns %s: %w", n.name, err)}
			return
		}
		ln, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			// Still locked: the runtime ends this thread with the goroutine.
			if ln != nil {
				ln.Close()
			}
			ch <- result{err: fmt.Errorf("leave netns %s: %w", n.name, err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ln, lerr}
	}()
	r := <-ch
	return r.ln, r.err
}

// forward relays TCP connections made to 127.0.0.1 inside the namespace to
// target, an address of this (the host's) namespace, and returns the
// address inside the namespace.
func (n *netns) forward(t *testing.T, target string) string {
	t.Helper()
	ln, err := n.listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen in netns %s: %v", n.name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Logf("forwarder: %v", err)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(c, target)
			}()
		}
	}()
	return ln.Addr().String()
}

func relay(c net.Conn, target string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}
