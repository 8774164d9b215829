package proxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

func runTool(t *testing.T, name string, args ...string) (string, error) {
	return runToolEnv(t, nil, name, args...)
}

func runToolEnv(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.SkipOrFail(t, name+" is not installed")
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The README's client snippets for an authenticating trustproxy, run with
// the real tools: skopeo --creds, and podman login writing an auth file
// skopeo then uses; with Basic and with the token service.
func TestClientToolsLogIn(t *testing.T) {
	for _, mode := range []string{"basic", "token"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOpts{rules: allowAll, access: teamAccess(t, mode == "token")})
			img := e.up.PushRandomImage(t, "teama/app:1", 1024, 1, types.OCIManifestSchema1)
			want, _ := img.Digest()
			ref := "docker://" + e.host + "/teama/app:1"

			out, err := runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--creds", "alice:alice-pw", "--format", "{{.Digest}}", ref)
			if err != nil || strings.TrimSpace(out) != want.String() {
				t.Fatalf("skopeo --creds alice: %v\n%s", err, out)
			}
			out, err = runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--creds", "bob:bob-pw", ref)
			if err == nil || !strings.Contains(out, "denied") {
				t.Fatalf("skopeo --creds bob (other team): %v\n%s", err, out)
			}
			out, err = runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", ref)
			if err == nil || !strings.Contains(strings.ToLower(out), "unauthorized") && !strings.Contains(strings.ToLower(out), "authentication required") {
				t.Fatalf("skopeo anonymous: %v\n%s", err, out)
			}

			authfile := filepath.Join(t.TempDir(), "auth.json")
			out, err = runTool(t, "podman", "login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", "alice-pw", e.host)
			if err != nil {
				t.Fatalf("podman login: %v\n%s", err, out)
			}
			out, err = runTool(t, "podman", "login", "--tls-verify=false", "--authfile", filepath.Join(t.TempDir(), "x.json"), "-u", "alice", "-p", "wrong", e.host)
			if err == nil {
				t.Fatalf("podman login with a wrong password succeeded:\n%s", out)
			}
			out, err = runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--authfile", authfile, "--format", "{{.Digest}}", ref)
			if err != nil || strings.TrimSpace(out) != want.String() {
				t.Fatalf("skopeo with podman's auth file: %v\n%s", err, out)
			}

			// crane auth login stores the credentials in $DOCKER_CONFIG/config.json.
			env := []string{"DOCKER_CONFIG=" + t.TempDir()}
			if out, err := runToolEnv(t, env, "crane", "auth", "login", e.host, "-u", "alice", "-p", "alice-pw"); err != nil {
				t.Fatalf("crane auth login: %v\n%s", err, out)
			}
			out, err = runToolEnv(t, env, "crane", "digest", "--insecure", e.host+"/teama/app:1")
			if err != nil || strings.TrimSpace(out) != want.String() {
				t.Fatalf("crane digest after crane auth login: %v\n%s", err, out)
			}
		})
	}
}
