package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoDigests is `docker image inspect`'s RepoDigests of ref.
func repoDigests(t *testing.T, env []string, ref string) []string {
	t.Helper()
	out := mustTool(t, env, "docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	var ds []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ds); err != nil {
		t.Fatalf("RepoDigests of %s: %v: %s", ref, err, out)
	}
	return ds
}

// wantRepoDigest checks that docker recorded repo@digest for ref.
func wantRepoDigest(t *testing.T, env []string, ref, repo, digest string) {
	t.Helper()
	ds := repoDigests(t, env, ref)
	if !slices.Contains(ds, repo+"@"+digest) {
		t.Fatalf("%s: RepoDigests %v; want %s@%s", ref, ds, repo, digest)
	}
}

// TestDockerEngine pulls through the proxy with the Docker engine the stack
// runs on, by prefixed references (<proxy>/upstream.test/acme/...).
// 127.0.0.0/8 is an insecure registry for docker by default: no TLS needed.
func TestDockerEngine(t *testing.T) {
	s := needStack(t)
	var pulled []string
	t.Cleanup(func() {
		if len(pulled) > 0 {
			if out, err := toolCtx(context.Background(), nil, "docker", append([]string{"image", "rm", "-f"}, pulled...)...); err != nil {
				t.Errorf("remove the pulled images: %v\n%s", err, out)
			}
		}
	})
	pull := func(t *testing.T, repoTag string) string {
		ref := s.proxyRef(repoTag)
		mustTool(t, nil, "docker", "pull", ref)
		pulled = append(pulled, ref)
		return ref
	}
	repo := func(r string) string { return s.proxy + "/" + upstreamName + "/" + r }

	t.Run("signed", func(t *testing.T) {
		ref := pull(t, "acme/signed:1.0")
		wantRepoDigest(t, nil, ref, repo("acme/signed"), s.seed.signed)
	})
	t.Run("unsigned", func(t *testing.T) {
		out, err := tool(t, nil, "docker", "pull", s.proxyRef("acme/unsigned:1.0"))
		// docker prints trustproxy's reason after "denied: ".
		wantRefused(t, out, err, "denied: trustproxy: "+upstreamName+"/acme/unsigned:1.0", `rule "acme"`)
	})
	t.Run("re-pushed tag", func(t *testing.T) {
		ref := pull(t, "acme/moved:1.0")
		wantRepoDigest(t, nil, ref, repo("acme/moved"), s.seed.moved)
	})
	t.Run("multi-platform index", func(t *testing.T) {
		ref := pull(t, "acme/multi:1.0")
		wantRepoDigest(t, nil, ref, repo("acme/multi"), s.seed.multi)
	})
}

// TestDockerRegistryMirror starts a second dockerd whose daemon.json names
// the proxy in registry-mirrors, and pulls Docker Hub style names through
// it. The daemon has its own data root, socket, pidfile and containerd, and
// runs in a network namespace of its own (reaching the proxy through a
// forwarder on the namespace's loopback), so it leaves the machine's engine
// and network alone.
func TestDockerRegistryMirror(t *testing.T) {
	s := needStack(t)
	needTool(t, "dockerd")
	needRoot(t)
	hadBridge := linkExists(t, "docker0")
	ns := newNetns(t)
	mirror := ns.forward(t, s.proxy)
	ctrd := startContainerd(t)
	dir := shortTempDir(t, "dockerd")
	sock := filepath.Join(dir, "docker.sock")
	cfg := map[string]any{
		"registry-mirrors": []string{"http://" + mirror},
		"data-root":        filepath.Join(dir, "root"), "exec-root": filepath.Join(dir, "exec"),
		"pidfile": filepath.Join(dir, "docker.pid"), "hosts": []string{"unix://" + sock},
		"containerd": ctrd, "containerd-namespace": "e2e-moby", "containerd-plugins-namespace": "e2e-moby-plugins",
		"storage-driver": "vfs", "iptables": false, "ip6tables": false, "ip-masq": false, "bridge": "none",
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	nsenter, args := ns.exec("dockerd", "--config-file", cfgPath)
	d := startDaemon(t, dir, nsenter, nil, args...)
	t.Cleanup(func() {
		d.stop(t)
		if hadBridge && !linkExists(t, "docker0") {
			t.Errorf("the machine's docker0 disappeared while the test's dockerd ran")
		}
	})
	env := []string{"DOCKER_HOST=unix://" + sock}
	d.waitFor(t, "its API", func() error {
		cmd := exec.Command("docker", "version")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, lastLine(string(out)))
		}
		return nil
	})
	if out := mustTool(t, env, "docker", "info", "--format", "{{json .RegistryConfig.Mirrors}}"); !strings.Contains(out, mirror) {
		t.Fatalf("the daemon does not list the mirror: %s", out)
	}

	// acme/signed means docker.io/acme/signed: the daemon asks the mirror
	// for /v2/acme/signed/..., which trustproxy serves from its default
	// upstream.
	t.Run("signed", func(t *testing.T) {
		mustTool(t, env, "docker", "pull", "acme/signed:1.0")
		wantRepoDigest(t, env, "acme/signed:1.0", "acme/signed", s.seed.signed)
	})
	t.Run("re-pushed tag", func(t *testing.T) {
		mustTool(t, env, "docker", "pull", "acme/moved:1.0")
		wantRepoDigest(t, env, "acme/moved:1.0", "acme/moved", s.seed.moved)
	})
	t.Run("multi-platform index", func(t *testing.T) {
		mustTool(t, env, "docker", "pull", "acme/multi:1.0")
		wantRepoDigest(t, env, "acme/multi:1.0", "acme/multi", s.seed.multi)
	})
	// A mirror's denial is not final for docker: the daemon logs it and
	// tries the next endpoint, Docker Hub itself (here a closed port, see
	// noEgress). CLIENTS.md says so: registry-mirrors needs egress to the
	// registry blocked to enforce anything.
	t.Run("unsigned", func(t *testing.T) {
		out, err := tool(t, env, "docker", "pull", "acme/unsigned:1.0")
		wantRefused(t, out, err, "registry-1.docker.io", "127.0.0.1:1")
		log := d.logText()
		for _, want := range []string{
			"Attempting next endpoint for pull after error: denied: trustproxy: " + upstreamName + "/acme/unsigned:1.0",
		} {
			if !strings.Contains(log, want) {
				t.Fatalf("dockerd's log lacks %q:\n%s", want, log)
			}
		}
	})
}

// linkExists says whether the machine has a network interface name.
func linkExists(t *testing.T, name string) bool {
	t.Helper()
	out, err := toolCtx(context.Background(), nil, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.TrimSuffix(f[1], ":") == name {
			return true
		}
	}
	return false
}
