package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// mirrorSides is an online side (registry, TUF repository, proxy
// configuration) and a way to make fresh offline sides.
type mirrorSides struct {
	dir, repo, keys, online string
	up                      *testenv.Registry
}

func newMirrorSides(t *testing.T) *mirrorSides {
	t.Helper()
	m := &mirrorSides{dir: t.TempDir(), up: testenv.NewRegistry(t)}
	m.repo, m.keys = filepath.Join(m.dir, "repo"), filepath.Join(m.dir, "keys")
	m.trust(t, "init", "--repo", m.repo, "--keys", m.keys)
	m.online = filepath.Join(m.dir, "online.yaml")
	writeFile(t, m.online, fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams: [{name: up, url: %q}]
trust: {corp: {metadata: %q, root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(m.dir, "online-state"), m.up.URL, filepath.Join(m.repo, "metadata"), m.rootPath()))
	return m
}

func (m *mirrorSides) rootPath() string { return filepath.Join(m.repo, "metadata", "1.root.json") }

func (m *mirrorSides) trust(t *testing.T, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := runTrust(t.Context(), args, &out, &out); err != nil {
		t.Fatalf("trust %v: %v\n%s", args, err, out.String())
	}
}

// sign vouches for what repoTag points at now, as up/<repoTag>.
func (m *mirrorSides) sign(t *testing.T, repoTag string) {
	t.Helper()
	m.trust(t, "add", m.up.Host+"/"+repoTag, "--repo", m.repo, "--keys", m.keys, "--insecure",
		"--name", "up/"+strings.SplitN(repoTag, ":", 2)[0], "--publish")
}

// offline writes the configuration of a fresh offline side: the upstream
// is offline, the trust repository is read from directories the import
// fills, the cache is on the filesystem.
func (m *mirrorSides) offline(t *testing.T) (cfg, root string) {
	t.Helper()
	root = t.TempDir()
	cfg = filepath.Join(root, "offline.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams: [{name: up, url: "http://192.0.2.1:9", offline: true}]
trust: {corp: {metadata: %q, root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(root, "cache"), filepath.Join(root, "state"), filepath.Join(root, "tuf", "metadata"), m.rootPath()))
	return cfg, root
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runMirrorArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runCommand(t.Context(), "mirror", args, &out, &out)
	return out.String(), err
}

func export(t *testing.T, m *mirrorSides, out string, refs ...string) {
	t.Helper()
	args := append([]string{"export", "--config", m.online}, out)
	if strings.HasSuffix(out, ".tar") {
		args[len(args)-1] = "--tar=" + out
	} else {
		args[len(args)-1] = "--out=" + out
	}
	if s, err := runMirrorArgs(t, append(args, refs...)...); err != nil {
		t.Fatalf("export: %v\n%s", err, s)
	}
}

func TestMirrorExportImportServe(t *testing.T) {
	m := newMirrorSides(t)
	ix := m.up.PushRandomIndex(t, "acme/app:1.0", 2, types.OCIImageIndex)
	m.up.PushRandomImage(t, "acme/unsigned:1.0", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	want, _ := ix.Digest()

	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")
	if s, err := runMirrorArgs(t, "export", "--config", m.online, "--out", filepath.Join(m.dir, "x"), "up/acme/unsigned:1.0"); err == nil ||
		!strings.Contains(err.Error(), `no target "up/acme/unsigned:1.0"`) {
		t.Fatalf("unsigned export: %v\n%s", err, s)
	}

	// skopeo reads the layout as it is.
	if out, err := exec.Command("skopeo", "inspect", "--raw", "oci:"+exp+":up/acme/app:1.0").CombinedOutput(); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if out, err := exec.Command("skopeo", "copy", "--all", "oci:"+exp+":up/acme/app:1.0", "dir:"+filepath.Join(m.dir, "skopeo")).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}

	cfg, _ := m.offline(t)
	out, err := runMirrorArgs(t, "import", "--config", cfg, exp)
	if err != nil || !strings.Contains(out, "imported 1 references") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, err = runMirrorArgs(t, "import", "--config", cfg, exp)
	if err != nil || !strings.Contains(out, "already imported: nothing changed") {
		t.Fatalf("second import: %v\n%s", err, out)
	}

	// The tar form: skopeo reads it as an oci-archive, and it imports.
	tarball := filepath.Join(m.dir, "export.tar")
	export(t, m, tarball, "up/acme/app:1.0")
	if out, err := exec.Command("skopeo", "inspect", "--raw", "oci-archive:"+tarball+":up/acme/app:1.0").CombinedOutput(); err != nil {
		t.Fatalf("skopeo inspect oci-archive: %v\n%s", err, out)
	}
	cfg2, _ := m.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfg2, tarball); err != nil || !strings.Contains(out, "imported 1 references") {
		t.Fatalf("tar import: %v\n%s", err, out)
	}

	b, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(b))
	got, err := crane.Digest(addr+"/up/acme/app:1.0", crane.Insecure)
	if err != nil || got != want.String() {
		t.Fatalf("digest through the offline proxy = %s, %v; want %s", got, err, want)
	}
	img, err := crane.Pull(addr+"/up/acme/app:1.0", crane.Insecure)
	if err != nil {
		t.Fatalf("pull through the offline proxy: %v", err)
	}
	if _, err := img.RawManifest(); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err == nil {
			_, err = bytes.NewBuffer(nil).ReadFrom(rc)
		}
		if err != nil {
			t.Fatalf("layer through the offline proxy: %v", err)
		}
	}
	if _, err := crane.Digest(addr+"/up/acme/unsigned:1.0", crane.Insecure); err == nil {
		t.Fatal("the offline proxy served what was never imported")
	}
}

// A cnab-to-oci bundle crosses as a unit: its index, config manifest,
// bundle.json and every invocation and component image.
func TestMirrorCNABBundle(t *testing.T) {
	m := newMirrorSides(t)
	pb := m.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	m.sign(t, "acme/bundle:1.0")
	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/bundle:1.0")
	cfg, _ := m.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(b))
	got, err := crane.Digest(addr+"/up/acme/bundle:1.0", crane.Insecure)
	if err != nil || got != pb.IndexDigest.String() {
		t.Fatalf("bundle digest through the offline proxy = %s, %v; want %s", got, err, pb.IndexDigest)
	}
	var ix struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(pb.Index, &ix); err != nil || len(ix.Manifests) < 3 {
		t.Fatalf("index: %v (%d entries)", err, len(ix.Manifests))
	}
	for _, d := range ix.Manifests {
		if _, err := crane.Manifest(addr+"/up/acme/bundle@"+d.Digest, crane.Insecure); err != nil {
			t.Fatalf("bundle part %s through the offline proxy: %v", d.Digest, err)
		}
	}
}
