package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// A signature made with the real cosign CLI crosses the air gap with its
// image: cosign signs on the online side (its sha256-<hex>.sig tag, as
// cosign writes it against a registry without the referrers API), the
// export carries it, and `cosign verify --key` succeeds against the
// offline proxy, which has no route to the upstream. No transparency log is
// reachable on either side, so signing skips the upload and verification
// skips the log, as an offline site configures cosign.
func TestMirrorCosignAcrossTheGap(t *testing.T) {
	if _, err := exec.LookPath("cosign"); err != nil {
		testenv.SkipOrFail(t, "cosign is not installed")
	}
	m := newMirrorSides(t)
	img := m.up.PushRandomImage(t, "acme/app:1.0", 1024, 2, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	d, _ := img.Digest()

	keys := t.TempDir()
	cosign := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("cosign", args...)
		cmd.Env = append(cmd.Environ(), "HOME="+keys, "COSIGN_PASSWORD=", "COSIGN_YES=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cosign("generate-key-pair", "--output-key-prefix", filepath.Join(keys, "cosign"))
	cosign("sign", "--key", filepath.Join(keys, "cosign.key"), "--tlog-upload=false", "--allow-http-registry",
		m.up.Host+"/acme/app@"+d.String())

	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")
	cfg, _ := m.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	cb, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := startFromConfig(t, string(cb))

	out := cosign("verify", "--key", filepath.Join(keys, "cosign.pub"), "--insecure-ignore-tlog=true",
		"--allow-http-registry", addr+"/up/acme/app:1.0")
	if !strings.Contains(out, d.String()) {
		t.Fatalf("cosign verify through the offline proxy: the verified payload does not name %s\n%s", d, out)
	}
}
