package proxy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// orasReferrers runs `oras discover --format json` and returns the
// referrers' digest → artifactType.
func orasReferrers(t *testing.T, ref string, extra ...string) (map[string]string, string, error) {
	t.Helper()
	args := append([]string{"discover", "--plain-http", "--format", "json", "--depth", "1"}, extra...)
	out, err := runTool(t, "oras", append(args, ref)...)
	if err != nil {
		return nil, out, err
	}
	var doc struct {
		Referrers []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range doc.Referrers {
		got[r.Digest] = r.ArtifactType
	}
	return got, out, nil
}

// The README's referrers example with the oras CLI: `oras attach` to the
// upstream (distribution: oras keeps the referrers tag schema), then `oras
// discover` and `oras pull` through trustproxy; an unsigned subject's
// referrers are denied.
func TestReferrersWithORAS(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 1024, 1, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	signed := te.sign(t, "acme/app:1.0", nil)
	unsigned := te.up.Descriptor(t, "acme/app:unsigned")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	attach := func(subject string) string {
		t.Helper()
		runTool(t, "oras", "version") // skips (or fails in CI) without oras
		cmd := exec.Command("oras", "attach", "--plain-http", "--artifact-type", sbomType, "--format", "json",
			te.up.Host+"/acme/app@"+subject, "sbom.json:application/spdx+json")
		cmd.Dir = dir
		b, err := cmd.Output()
		out := string(b)
		if err != nil {
			t.Fatalf("oras attach: %v\n%s", err, out)
		}
		var d struct {
			Digest string `json:"digest"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil || d.Digest == "" {
			t.Fatalf("oras attach output: %v\n%s", err, out)
		}
		return d.Digest
	}
	att := attach(signed.Digest)
	attach(unsigned.Digest.String())

	through := te.host + "/" + upName + "/acme/app"
	got, out, err := orasReferrers(t, through+"@"+signed.Digest)
	if err != nil {
		t.Fatalf("oras discover through trustproxy: %v\n%s", err, out)
	}
	if len(got) != 1 || got[att] != sbomType {
		t.Fatalf("oras discover: %v, want %s (%s)\n%s", got, att, sbomType, out)
	}
	// By tag too: oras resolves the signed tag through trustproxy first.
	if got, out, err = orasReferrers(t, through+":1.0", "--artifact-type", sbomType); err != nil || got[att] != sbomType {
		t.Fatalf("oras discover by tag, filtered: %v %v\n%s", got, err, out)
	}

	pulled := t.TempDir()
	if out, err := runTool(t, "oras", "pull", "--plain-http", "-o", pulled, through+"@"+att); err != nil {
		t.Fatalf("oras pull of the attachment through trustproxy: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(pulled, "sbom.json")); err != nil || !strings.Contains(string(b), "SPDX-2.3") {
		t.Fatalf("pulled sbom: %q %v", b, err)
	}

	// oras resolves the subject first: a HEAD, answered 403 without a body.
	if _, out, err := orasReferrers(t, through+"@"+unsigned.Digest.String()); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("oras discover of an unsigned subject: %v\n%s", err, out)
	}
}
