package trustfetch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	r := newTestRepo(t)
	notRoot := filepath.Join(t.TempDir(), "targets.json")
	must(t, os.WriteFile(notRoot, []byte(`{"signed":{"_type":"targets"},"signatures":[]}`), 0o644))
	tampered := filepath.Join(t.TempDir(), "root.json")
	b, err := os.ReadFile(r.rootPath)
	must(t, err)
	must(t, os.WriteFile(tampered, []byte(strings.Replace(string(b), `"version":1`, `"version":7`, 1)), 0o644))

	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "Name: required"},
		{"no metadata", func(c *Config) { c.Metadata = "" }, `"acme" config: Metadata: required`},
		{"no root", func(c *Config) { c.Root = "" }, "Root: required"},
		{"no state", func(c *Config) { c.StateDir = "" }, "StateDir: required"},
		{"bad scheme", func(c *Config) { c.Metadata = "ftp://tuf.example/metadata" }, `Metadata: scheme "ftp" is not supported`},
		{"no host", func(c *Config) { c.Metadata = "https:///metadata" }, "has no host"},
		{"remote file URL", func(c *Config) { c.Metadata = "file://elsewhere/metadata" }, "must be local"},
		{"bad targets", func(c *Config) { c.Targets = "gopher://x/y" }, "Targets: scheme"},
		{"negative refresh", func(c *Config) { c.Refresh = -time.Second }, "Refresh: -1s is negative"},
		{"negative metadata bound", func(c *Config) { c.MaxMetadataBytes = -1 }, "MaxMetadataBytes"},
		{"negative target bound", func(c *Config) { c.MaxTargetBytes = -1 }, "MaxTargetBytes"},
		{"root missing", func(c *Config) { c.Root = filepath.Join(t.TempDir(), "nope.json") }, "Root: open"},
		{"root is not a root", func(c *Config) { c.Root = notRoot }, "is not a valid self-signed TUF root"},
		{"root signature broken", func(c *Config) { c.Root = tampered }, "is not a valid self-signed TUF root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "acme", Metadata: "https://tuf.example/acme/metadata", Root: r.rootPath, StateDir: t.TempDir()}
			tc.mod(&cfg)
			_, err := Open(t.Context(), cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigLocations(t *testing.T) {
	tests := []struct {
		metadata, targets  string
		wantMeta, wantTgts string
	}{
		{"https://tuf.example/acme/metadata", "", "https://tuf.example/acme/metadata", "https://tuf.example/acme/targets"},
		{"https://tuf.example/acme/metadata/", "", "https://tuf.example/acme/metadata/", "https://tuf.example/acme/targets"},
		{"http://tuf.example:8080/metadata", "https://cdn.example/t", "http://tuf.example:8080/metadata", "https://cdn.example/t"},
		{"/srv/tuf/metadata", "", "/srv/tuf/metadata", "/srv/tuf/targets"},
		{"/srv/tuf/metadata/", "", "/srv/tuf/metadata", "/srv/tuf/targets"},
		{"file:///srv/tuf/metadata", "", "/srv/tuf/metadata", "/srv/tuf/targets"},
		{"/srv/tuf/metadata", "https://cdn.example/t", "/srv/tuf/metadata", "https://cdn.example/t"},
	}
	for _, tc := range tests {
		rc, err := Config{Name: "n", Metadata: tc.metadata, Targets: tc.targets, Root: "r", StateDir: "s"}.resolve()
		if err != nil {
			t.Fatalf("%s: %v", tc.metadata, err)
		}
		if rc.metadata.String() != tc.wantMeta || rc.targets.String() != tc.wantTgts {
			t.Errorf("%s, %q: metadata %s targets %s; want %s and %s", tc.metadata, tc.targets, rc.metadata, rc.targets, tc.wantMeta, tc.wantTgts)
		}
		if rc.Refresh != DefaultRefresh || rc.MaxMetadataBytes != DefaultMaxMetadataBytes || rc.MaxTargetBytes != DefaultMaxTargetBytes {
			t.Errorf("defaults not applied: %+v", rc.Config)
		}
	}
}

// An operator who pins a newer root (say after a key compromise) is obeyed
// even though the state holds an older verified root.
func TestPinnedRootNewerThanState(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	mustIndex(t, r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir = state }))

	// Root version 2 drops the old root key without its signature (an
	// out-of-band recovery): clients can only learn it from the pin.
	r.rotateRoot(func() { r.replaceKey(metadata.ROOT) }, func(_, new []signature.Signer) []signature.Signer { return new })
	b, err := os.ReadFile(filepath.Join(r.metadataDir(), "2.root.json"))
	must(t, err)
	must(t, os.Remove(filepath.Join(r.metadataDir(), "2.root.json")))
	pinned := filepath.Join(t.TempDir(), "root.json")
	must(t, os.WriteFile(pinned, b, 0o644))
	r.publish()

	repo := r.open(srv.metadataURL(), func(c *Config, _ *Options) { c.StateDir, c.Root = state, pinned })
	if v := mustIndex(t, repo).Versions(); v.Root != 2 {
		t.Fatalf("Versions() = %+v, want root 2 from the pin", v)
	}
}
