package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// noEgress is the environment of every client a test runs. Clients that
// fall back from the proxy to the real registry (docker's registry-mirrors,
// podman's mirrors) would otherwise reach for the internet: this points
// every proxy-aware client at a closed port on loopback, so a fallback
// fails at once, visibly, and sends nothing off the machine. The proxy
// itself is on 127.0.0.1, which NO_PROXY exempts.
func noEgress() []string {
	const dead = "http://127.0.0.1:1"
	return []string{
		"HTTP_PROXY=" + dead, "HTTPS_PROXY=" + dead, "http_proxy=" + dead, "https_proxy=" + dead,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
}

// needTool ends the test (skip, or fail in CI) when tool is not installed.
func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, fmt.Sprintf("compose-e2e: %s is not installed (apt-get install skopeo podman containerd)", tool))
		}
	}
}

// needRoot ends the test when the daemons it starts cannot run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "compose-e2e: starting containerd, dockerd or podman with private storage needs root")
	}
}

// tool runs a client command with noEgress and returns its combined output.
func tool(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	return toolCtx(t.Context(), env, name, args...)
}

// toolCtx is tool for cleanups, which run after t.Context() is canceled.
func toolCtx(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), noEgress()...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), errExit(err))
	}
	return string(out), err
}

// mustTool is tool that fails the test on error.
func mustTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tool(t, env, name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// wantRefused checks that a client command failed and that its output
// carries each of the given strings (trustproxy's reason, where the client
// shows it).
func wantRefused(t *testing.T, out string, err error, shows ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded; want a refusal:\n%s", out)
	}
	for _, s := range shows {
		if !strings.Contains(out, s) {
			t.Fatalf("%v: output does not show %q:\n%s", err, s, out)
		}
	}
	t.Logf("refused as expected: %s", lastLine(out))
}

// daemon is a background process the test started; stop ends it by PID.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startDaemon(t *testing.T, dir, name string, env []string, args ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(dir, filepath.Base(name)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), noEgress()...), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Logf("%s (pid %d) ignored SIGTERM for 30s; killing it", d.name, d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// waitFor polls ok until it returns nil or the daemon exits or time is up.
func (d *daemon) waitFor(t *testing.T, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := ok()
		if err == nil {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("%s exited before %s: %v\n%s", d.name, what, err, d.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within 90s: %v\n%s", d.name, what, err, d.logText())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// startContainerd starts a private containerd (own root, state and socket;
// no CRI) and returns its socket.
func startContainerd(t *testing.T) string {
	t.Helper()
	needTool(t, "containerd", "ctr")
	needRoot(t)
	dir := shortTempDir(t, "ctrd")
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, "containerd", nil, "--config", cfgPath)
	d.waitFor(t, "its socket", func() error {
		out, err := exec.Command("ctr", "-a", sock, "version").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, lastLine(string(out)))
		}
		return nil
	})
	return sock
}

// shortTempDir is a temporary directory with a short path: unix socket
// paths are limited to 108 bytes, and t.TempDir's can be longer.
func shortTempDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tpe2e-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// accessLine is one request line of trustproxy's access log.
type accessLine struct {
	Msg      string `json:"msg"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Status   int    `json:"status"`
	Upstream string `json:"upstream"`
	Repo     string `json:"repository"`
	Ref      string `json:"ref"`
	Decision string `json:"decision"`
	Cache    string `json:"cache"`
}

// proxyRequests returns trustproxy's access log lines since a time.
func (s *stack) proxyRequests(t *testing.T, since time.Time) []accessLine {
	t.Helper()
	id, err := s.containerID(t.Context(), "trustproxy")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "docker", "logs", "--since", since.Add(-time.Second).Format(time.RFC3339Nano), id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs: %v\n%s", err, out)
	}
	var lines []accessLine
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request" {
			lines = append(lines, l)
		}
	}
	return lines
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
