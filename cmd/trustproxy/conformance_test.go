package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// TestOCIConformance runs the OCI distribution-spec conformance suite (pull
// workflow, read-only, with the referrers API) against trustproxy fronting
// a seeded upstream with an allow rule. The pinned suite crashes after
// printing its summary in read-only mode, so it is judged by its result
// line.
func TestOCIConformance(t *testing.T) {
	bin := os.Getenv("OCI_CONFORMANCE_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("conformance")
	}
	if bin == "" {
		gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", "conformance")
		if _, err := os.Stat(gobin); err == nil {
			bin = gobin
		}
	}
	if bin == "" {
		testenv.SkipOrFail(t, "OCI conformance suite not installed (go install github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111)")
	}
	up := testenv.NewRegistry(t)
	img := up.PushRandomImage(t, "conformance/ro:v1", 4096, 2, types.OCIManifestSchema1)
	md, _ := img.Digest()
	cfg, _ := img.ConfigName()
	layers, _ := img.Layers()
	blobs := []string{cfg.String()}
	for _, l := range layers {
		d, _ := l.Digest()
		blobs = append(blobs, d.String())
	}
	addr := startFromConfig(t, fmt.Sprintf(`
listen: 127.0.0.1:0
storage: {inmemory: {}}
upstreams:
  - {name: upstream, url: %q, default: true}
policy:
  rules:
    - {name: conformance, match: "upstream/conformance/**", mode: allow}
`, up.URL))
	results := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+addr, "OCI_TLS=disabled", "OCI_REPO1=conformance/ro", "OCI_REPO2=conformance/ro2",
		"OCI_API_PUSH=false", "OCI_API_BLOBS_DELETE=false", "OCI_API_MANIFESTS_DELETE=false",
		"OCI_API_TAGS_DELETE=false", "OCI_API_REFERRER=true",
		"OCI_RO_DATA_TAGS=v1", "OCI_RO_DATA_MANIFESTS="+md.String(), "OCI_RO_DATA_BLOBS="+strings.Join(blobs, " "),
		"OCI_RESULTS_DIR="+results,
	)
	out, _ := cmd.CombinedOutput() // exits non-zero after its summary in read-only mode
	if !strings.Contains(string(out), "OCI Conformance Result: Pass") {
		t.Fatalf("conformance did not pass:\n%s", out)
	}
	// The referrers API (OCI_API_REFERRER=true): in read-only mode the
	// suite asks for the referrers of a subject the upstream lacks and
	// wants a 200 empty index, never a 404.
	if !strings.Contains(string(out), "empty/referrers: Pass") {
		t.Fatalf("the referrers test did not run or pass:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "OCI Conformance Result") || strings.Contains(line, "Pass:") || strings.Contains(line, "Fail:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}
