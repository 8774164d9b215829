package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/internal/testenv"
)

// acmeAccess: alice may pull acme/**; bob is a valid user without access.
func acmeAccess(t testing.TB, token bool) *access.Authority {
	t.Helper()
	c := access.Config{
		Htpasswd: writeUsers(t, teamUsers),
		Rules:    []access.Rule{{Match: []string{upName + "/acme/**"}, Allow: []string{"alice"}}},
	}
	return newAuthority(t, c, token)
}

// The README's docker login and containerd credential snippets, run with the
// machine's Docker engine (127.0.0.0/8 is an insecure registry by default)
// and a private containerd, against a signed image, with Basic and with the
// token service.
func TestDockerLoginAndContainerdCredentials(t *testing.T) {
	for _, mode := range []string{"basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			te := newTrustEnvWith(t, envOpts{access: acmeAccess(t, mode == "token")})
			te.up.PushRandomImage(t, "acme/app:1", 1024, 1, types.OCIManifestSchema1)
			want := te.sign(t, "acme/app:1", nil).Digest
			ref := te.host + "/acme/app:1"
			t.Run("docker", func(t *testing.T) { dockerLogin(t, te.host, ref, want) })
			t.Run("containerd", func(t *testing.T) { containerdCredentials(t, te.host, ref, want) })
		})
	}
}

func dockerLogin(t *testing.T, host, ref, want string) {
	needRealClient(t, "docker")
	login := func(user, pw string) ([]string, string, error) {
		env := []string{"DOCKER_CONFIG=" + t.TempDir()}
		cmd := exec.CommandContext(t.Context(), "docker", "login", host, "-u", user, "--password-stdin")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(pw)
		out, err := cmd.CombinedOutput()
		return env, string(out), err
	}
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", ref).Run() })

	env, out, err := login("alice", "alice-pw")
	if err != nil {
		t.Fatalf("docker login alice: %v\n%s", err, out)
	}
	if out, err := runToolEnv(t, env, "docker", "pull", ref); err != nil {
		t.Fatalf("docker pull after docker login: %v\n%s", err, out)
	}
	out, err = runToolEnv(t, env, "docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	if err != nil || !strings.Contains(out, strings.TrimSuffix(ref, ":1")+"@"+want) {
		t.Fatalf("docker pulled %s; want the signed %s: %v", out, want, err)
	}

	if _, out, err := login("alice", "wrong"); err == nil {
		t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
	}
	out, err = runToolEnv(t, []string{"DOCKER_CONFIG=" + t.TempDir()}, "docker", "pull", ref)
	// Basic: the daemon has no credentials to send; token: /token says 401.
	if err == nil || !strings.Contains(out, "no basic auth credentials") && !strings.Contains(out, "unauthorized") {
		t.Fatalf("docker pull without login: %v, want an auth error\n%s", err, out)
	}
	t.Logf("without login: %s", out)
	bobEnv, out, err := login("bob", "bob-pw")
	if err != nil {
		t.Fatalf("docker login bob: %v\n%s", err, out)
	}
	out, err = runToolEnv(t, bobEnv, "docker", "pull", ref)
	if err == nil || !strings.Contains(out, "trustproxy: access denied") {
		t.Fatalf("docker pull as bob: %v, want trustproxy's denial\n%s", err, out)
	}
	t.Logf("bob: %s", out)
}

func containerdCredentials(t *testing.T, host, ref, want string) {
	sock := startPrivateContainerd(t)
	ctr := func(args ...string) (string, error) {
		return runTool(t, "ctr", append([]string{"-a", sock, "-n", "login"}, args...)...)
	}
	pull := func(extra ...string) (string, error) {
		return ctr(append(append([]string{"images", "pull", "--plain-http", "--snapshotter", "native"}, extra...), ref)...)
	}
	if out, err := pull("--user", "alice:alice-pw"); err != nil {
		t.Fatalf("ctr pull --user alice: %v\n%s", err, out)
	}
	out, err := ctr("images", "ls")
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("ctr images ls lacks the signed %s: %v\n%s", want, err, out)
	}
	if _, err := ctr("images", "rm", ref); err != nil {
		t.Fatal(err)
	}
	// The credentials in hosts.toml instead: a header on every request.
	hostsDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(hostsDir, host), 0o755); err != nil {
		t.Fatal(err)
	}
	hostsTOML := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  [host.\"http://%[1]s\".header]\n    Authorization = \"Basic %[2]s\"\n",
		host, base64.StdEncoding.EncodeToString([]byte("alice:alice-pw")))
	if err := os.WriteFile(filepath.Join(hostsDir, host, "hosts.toml"), []byte(hostsTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ctr("images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", ref); err != nil {
		t.Fatalf("ctr pull --hosts-dir with an Authorization header:\n%s\n%v\n%s", hostsTOML, err, out)
	}
	if out, err := ctr("images", "ls"); err != nil || !strings.Contains(out, want) {
		t.Fatalf("ctr images ls lacks the signed %s after the hosts.toml pull: %v\n%s", want, err, out)
	}
	if _, err := ctr("images", "rm", ref); err != nil {
		t.Fatal(err)
	}
	if out, err := pull(); err == nil || !strings.Contains(out, "401 Unauthorized") {
		t.Fatalf("ctr pull without credentials: %v, want 401\n%s", err, out)
	}
	// containerd resolves with HEAD, whose 403 has no body: status only.
	if out, err := pull("--user", "bob:bob-pw"); err == nil || !strings.Contains(out, "403 Forbidden") {
		t.Fatalf("ctr pull --user bob: %v, want 403\n%s", err, out)
	}
}

// needRealClient ends the test (failing it in CI) without the tool or root.
func needRealClient(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		testenv.SkipOrFail(t, tool+" is not installed")
	}
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, tool+": needs root")
	}
}

// startPrivateContainerd runs a containerd with its own root, state and
// socket (no CRI), so the machine's containerd and its images are untouched.
func startPrivateContainerd(t *testing.T) string {
	t.Helper()
	needRealClient(t, "containerd")
	needRealClient(t, "ctr")
	dir, err := os.MkdirTemp("", "tp-ctrd-") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for exec.CommandContext(ctx, "ctr", "-a", sock, "version").Run() != nil {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd exited:\n%s", b)
		case <-ctx.Done():
			t.Fatal("containerd: no socket within 60s")
		case <-time.After(300 * time.Millisecond):
		}
	}
	return sock
}
