package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

func TestCheck(t *testing.T) {
	up := testenv.NewRegistry(t)
	signed := up.PushRandomImage(t, "acme/app:1.0", 256, 1, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/app:2.0", 256, 1, types.OCIManifestSchema1)
	sd, _ := signed.Digest()
	dir := t.TempDir()
	repo, keys := filepath.Join(dir, "repo"), filepath.Join(dir, "keys")
	for _, args := range [][]string{
		{"init", "--repo", repo, "--keys", keys},
		{"add", up.Host + "/acme/app:1.0", "--repo", repo, "--keys", keys, "--insecure", "--name", "up/acme/app", "--publish"},
	} {
		var out bytes.Buffer
		if err := runTrust(t.Context(), args, &out, &out); err != nil {
			t.Fatalf("trust %v: %v\n%s", args, err, out.String())
		}
	}
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams: [{name: up, url: %q}]
trust: {corp: {metadata: %q, root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(dir, "state"), up.URL, filepath.Join(repo, "metadata"), filepath.Join(repo, "metadata", "1.root.json"))), 0o644)

	var out bytes.Buffer
	if err := runCheck(t.Context(), []string{"--config", cfg, "up/acme/app:1.0"}, &out, &out); err != nil {
		t.Fatalf("signed: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "ALLOW up/acme/app:1.0") || !strings.Contains(out.String(), sd.String()) {
		t.Fatalf("signed: %s", out.String())
	}
	out.Reset()
	err := runCheck(t.Context(), []string{"--config", cfg, "up/acme/app:2.0"}, &out, &out)
	if err == nil || !strings.HasPrefix(out.String(), "DENY up/acme/app:2.0") || !strings.Contains(out.String(), `no target "up/acme/app:2.0"`) {
		t.Fatalf("unsigned: %v\n%s", err, out.String())
	}
}
