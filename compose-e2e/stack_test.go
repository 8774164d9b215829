package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	// project is the compose project name: containers, networks and
	// volumes are prefixed with it.
	project = "trustproxy-e2e"
	// imageTag tags the images build-images.sh builds for the tests.
	imageTag = "e2e"
	// upstreamName is the upstream's name in trustproxy.yaml: references
	// through the proxy are <proxy>/upstream.test/<repo>:<tag> and TUF
	// target names upstream.test/<repo>:<tag>.
	upstreamName = "upstream.test"
	// mirrorName is the same upstream under a second, non-default name;
	// the containerd test reaches it with ?ns= only.
	mirrorName = "mirror.test"
)

// stack is the running compose stack and what was seeded into it.
type stack struct {
	dir      string // compose-e2e/ (docker-compose.yml, build-images.sh)
	work     string // E2E_WORK: trust/root.json, tuf/repo, tuf/keys
	bin      string // the trustproxy binary on the host (publisher CLI)
	proxy    string // 127.0.0.1:port of trustproxy
	proxyTLS string // 127.0.0.1:port of trustproxy-tls (the same, serving TLS)
	registry string // 127.0.0.1:port of the upstream registry (seeding only)

	seed seeded
}

// engineMissing says why no compose stack can run here, or "".
func engineMissing() string {
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("needs a Docker engine with docker-compose: %s is not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return fmt.Sprintf("needs a Docker engine: `docker version` failed: %v: %s", err, firstLine(out))
	}
	return ""
}

func newStack(ctx context.Context) (*stack, error) {
	_, file, _, _ := runtime.Caller(0)
	s := &stack{dir: filepath.Dir(file)}
	work, err := os.MkdirTemp("", "trustproxy-e2e-")
	if err != nil {
		return nil, err
	}
	// The containers run as uid 65532 and read the bind mounts below.
	if err := os.Chmod(work, 0o755); err != nil {
		return nil, err
	}
	s.work = work
	for _, d := range []string{"trust", "tuf"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s.proxy, s.registry = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	s.proxyTLS = fmt.Sprintf("127.0.0.1:%d", ports[2])
	return s, nil
}

// up builds the images and the publisher CLI, starts the upstream and the
// TUF server, seeds and signs, then starts trustproxy and waits until it is
// ready (trust data loaded).
func (s *stack) up(ctx context.Context) error {
	logf("building images (build-images.sh %s)", imageTag)
	s.bin = filepath.Join(s.work, "trustproxy")
	build := s.cmd(ctx, "bash", filepath.Join(s.dir, "build-images.sh"), imageTag)
	build.Env = append(build.Env, "TRUSTPROXY_BIN="+s.bin)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build images: %v\n%s", err, out)
	}
	// Leftovers of an interrupted run would hold the ports and volumes.
	if _, err := s.compose(ctx, "down", "-v", "--remove-orphans"); err != nil {
		return err
	}
	if err := s.initTrust(ctx); err != nil {
		return err
	}
	logf("starting registry and tuf")
	if _, err := s.compose(ctx, "up", "-d", "registry", "tuf"); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+s.registry+"/v2/", 200, 2*time.Minute); err != nil {
		return fmt.Errorf("upstream registry: %w", err)
	}
	logf("seeding the upstream and signing")
	if err := s.seedAndSign(ctx); err != nil {
		return err
	}
	if err := s.issueTLS(); err != nil {
		return fmt.Errorf("issue the TLS certificate: %w", err)
	}
	logf("starting trustproxy and trustproxy-tls")
	if _, err := s.compose(ctx, "up", "-d", "trustproxy", "trustproxy-tls"); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	return s.waitReadyTLS(ctx)
}

// waitReady waits until trustproxy answers /readyz with 200.
func (s *stack) waitReady(ctx context.Context) error {
	if err := waitHTTP(ctx, "http://"+s.proxy+"/readyz", 200, 2*time.Minute); err != nil {
		return fmt.Errorf("trustproxy: %w", err)
	}
	return nil
}

func (s *stack) down(ctx context.Context) error {
	_, err := s.compose(ctx, "down", "-v", "--remove-orphans")
	if rerr := os.RemoveAll(s.work); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func (s *stack) dumpLogs(ctx context.Context) {
	out, _ := s.compose(ctx, "logs", "--no-color", "--tail", "200")
	logf("docker-compose logs (last 200 lines per service):\n%s", out)
}

func (s *stack) printKeep() {
	logf(`E2E_KEEP=1: the stack stays up.
  proxy:    %s   (e.g. docker pull %s/%s/acme/signed:1.0)
  TLS:      %s   (CA: %s/tls/ca/ca.crt)
  upstream: %s
  work:     %s   (publisher: %s trust ... --repo %s/tuf/repo --keys %s/tuf/keys)
  down:     E2E_WORK=%s docker-compose -p %s -f %s down -v`,
		s.proxy, s.proxy, upstreamName, s.proxyTLS, s.work, s.registry, s.work, s.bin, s.work, s.work,
		s.work, project, filepath.Join(s.dir, "docker-compose.yml"))
}

// composeEnv is the environment docker-compose.yml reads.
func (s *stack) composeEnv() []string {
	_, proxyPort, _ := net.SplitHostPort(s.proxy)
	_, regPort, _ := net.SplitHostPort(s.registry)
	_, tlsPort, _ := net.SplitHostPort(s.proxyTLS)
	return append(os.Environ(),
		"E2E_WORK="+s.work, "E2E_TAG="+imageTag,
		"E2E_PROXY_PORT="+proxyPort, "E2E_REGISTRY_PORT="+regPort, "E2E_PROXY_TLS_PORT="+tlsPort)
}

// compose runs docker-compose on the stack and returns its output.
func (s *stack) compose(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"-p", project, "-f", filepath.Join(s.dir, "docker-compose.yml")}, args...)
	cmd := s.cmd(ctx, "docker-compose", full...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *stack) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	cmd.Env = s.composeEnv()
	return cmd
}

// containerID is the id of a service's container.
func (s *stack) containerID(ctx context.Context, service string) (string, error) {
	out, err := s.compose(ctx, "ps", "-q", service)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" {
		return "", fmt.Errorf("service %s has no container", service)
	}
	return id, nil
}

// waitHTTP polls url until it answers want.
func waitHTTP(ctx context.Context, url string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: no %d within %s; last answer: %s", url, want, timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// freePorts finds n free TCP ports on 127.0.0.1 for the published ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// errExit extracts a command's exit code for messages.
func errExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "exit " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}
