//go:build bench

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one child process serving HTTP on a loopback port.
type server struct {
	name string
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	host string // 127.0.0.1:port
	dir  string // its work directory (config, storage, log)
	log  string // stdout+stderr
	// pprof is the profiling hook's address (trustproxy built with -profile).
	pprof string
	done  chan struct{}
	err   error
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the child binds it; start then fails clearly.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts bin with args, logging to dir/name.log, and waits
// until GET url+readyPath answers 200.
func startServer(ctx context.Context, name, dir, bin string, args, env []string, port int, readyPath string) (*server, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, and killed with us if we die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, dir: dir, log: logPath, done: make(chan struct{}),
		host: fmt.Sprintf("127.0.0.1:%d", port)}
	s.url = "http://" + s.host
	go func() {
		s.err = cmd.Wait()
		lf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s exited during start-up (%v); log %s:\n%s", name, s.err, logPath, tail(logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get(s.url + readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s not ready after 90s; log %s:\n%s", name, logPath, tail(logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process by its pid: SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// procStatus reads a "VmXXX:  N kB" line of /proc/<pid>/status, in bytes.
func (s *server) procStatus(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", field, v, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, s.cmd.Process.Pid)
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" to clear_refs),
// so that the next VmHWM read is the peak of what happened in between.
func (s *server) resetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// cpuSeconds is the process's user+system CPU time so far.
func (s *server) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces) in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// waitIdle waits until the process has used no CPU for 200 ms (at most
// max), and returns its CPU time then.
func (s *server) waitIdle(max time.Duration) float64 {
	deadline := time.Now().Add(max)
	last, _ := s.cpuSeconds()
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		c, err := s.cpuSeconds()
		if err != nil || c == last {
			return c
		}
		last = c
	}
	return last
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// countUpstreamGETs counts GET requests for path in the upstream registry's
// access log (gorilla combined format: "GET /v2/... HTTP/1.1" 200 ...).
func countUpstreamGETs(logPath, path string) (int, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	needle := `"GET ` + path + ` HTTP/`
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), needle) {
			n++
		}
	}
	return n, sc.Err()
}
