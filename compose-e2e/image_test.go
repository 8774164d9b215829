package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestImage checks the trustproxy container the way an operator sees it:
// the Dockerfile's HEALTHCHECK (a static probe, scratch has no shell)
// reports healthy, the process runs as the image's non-root user, and /data
// is a volume. trustproxy-tls runs the probe with -insecure over https, as
// CLIENTS.md says to for a TLS proxy.
func TestImage(t *testing.T) {
	s := needStack(t)
	t.Run("trustproxy", func(t *testing.T) { checkContainer(t, s, "trustproxy", "http://127.0.0.1:5000/healthz") })
	t.Run("trustproxy-tls", func(t *testing.T) {
		checkContainer(t, s, "trustproxy-tls", "https://127.0.0.1:5000/healthz")
	})
}

func checkContainer(t *testing.T, s *stack, service, probeURL string) {
	id, err := s.containerID(t.Context(), service)
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(format string) string {
		out, err := exec.CommandContext(t.Context(), "docker", "inspect", "--format", format, id).CombinedOutput()
		if err != nil {
			t.Fatalf("docker inspect: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// The image's interval is 10s: the first verdict comes 10s after start.
	deadline := time.Now().Add(90 * time.Second)
	for {
		status := inspect("{{.State.Health.Status}}")
		if status == "healthy" {
			break
		}
		if status == "unhealthy" || time.Now().After(deadline) {
			t.Fatalf("health %q; last probes: %s", status, inspect("{{json .State.Health.Log}}"))
		}
		time.Sleep(time.Second)
	}
	var hc struct{ Test []string }
	if err := json.Unmarshal([]byte(inspect("{{json .Config.Healthcheck}}")), &hc); err != nil || len(hc.Test) < 3 ||
		hc.Test[1] != "/usr/local/bin/healthprobe" || hc.Test[len(hc.Test)-1] != probeURL {
		t.Fatalf("health check %v (%v); want the image's healthprobe of %s", hc.Test, err, probeURL)
	}

	if u := inspect("{{.Config.User}}"); u != "65532:65532" {
		t.Errorf("user %q; want 65532:65532", u)
	}
	out, err := exec.CommandContext(t.Context(), "docker", "top", id, "-o", "pid,uid,args").CombinedOutput()
	if err != nil {
		t.Fatalf("docker top: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "65532") || !strings.Contains(string(out), "trustproxy serve --config /config/config.yaml") {
		t.Errorf("docker top: want trustproxy serve running as uid 65532:\n%s", out)
	}
	if m := inspect(`{{range .Mounts}}{{if eq .Destination "/data"}}{{.Type}}{{end}}{{end}}`); m != "volume" {
		t.Errorf("/data is mounted as %q; want a volume", m)
	}
}
