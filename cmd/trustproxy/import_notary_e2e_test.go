package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// Migration off a Notary server: DCT- and Signy-signed tags are imported
// into a TUF repository with `trust import-notary`, the Notary server is
// stopped, and trustproxy serves from the migrated repository: every tag
// that verified in Notary still verifies, nothing else does.
func TestImportNotaryThenRetireTheServer(t *testing.T) {
	srv := testenv.NewNotaryServerTLS(t)
	up := testenv.NewRegistry(t)
	one := up.PushRandomImage(t, "acme/app:1.0", 1024, 2, types.OCIManifestSchema1)
	two := up.PushRandomImage(t, "acme/app:2.0", 1024, 1, types.DockerManifestSchema2)
	alice := up.PushRandomImage(t, "acme/app:alice", 1024, 1, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	sup, vec := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:v1")
	sup2, _ := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:wrong-subject")

	raw := func(img interface{ RawManifest() ([]byte, error) }) []byte {
		b, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dct := testenv.NewNotarySignerFor(t, srv)
	gun := up.Host + "/acme/app"
	dct.Init(gun)
	dct.AddReleases(gun)
	dct.AddDelegation(gun, "targets/alice")
	dct.Sign(gun, "1.0", raw(one), "targets/releases", nil)
	dct.Sign(gun, "2.0", raw(two), "targets", nil)
	dct.Sign(gun, "alice", raw(alice), "targets/alice", nil) // DCT ignores this delegation

	dir := t.TempDir()
	rsaKey := rsaInTotoKeys(t)
	goodLayout, goodLinks, owner := writeSupplyChainFor(t, filepath.Join(dir, "good"), "bundle.json", testenv.SignyBundleDigest.Encoded(), rsaKey)
	badLayout, badLinks, badOwner := writeSupplyChainFor(t, filepath.Join(dir, "bad"), "bundle.json", strings.Repeat("0", 64), rsaKey)
	signy := testenv.NewNotarySignerFor(t, srv)
	bundleGUN := sup.Host + "/cnab/thin-bundle"
	signy.Init(bundleGUN)
	signy.Sign(bundleGUN, "v1", vec.BundleJSON, "targets", signyPayload(t, goodLayout, goodLinks, owner))
	signy.Sign(bundleGUN, "wrong-subject", vec.BundleJSON, "targets", signyPayload(t, badLayout, badLinks, badOwner))
	// Valid on its own, but a second root layout for the repository.
	otherLayout, otherLinks, otherOwner := writeSupplyChainFor(t, filepath.Join(dir, "other"), "bundle.json", testenv.SignyBundleDigest.Encoded(), rsaKey)
	signy.Sign(bundleGUN, "v1-other-layout", vec.BundleJSON, "targets", signyPayload(t, otherLayout, otherLinks, otherOwner))

	vars := map[string]string{"repo": filepath.Join(dir, "repo"), "keys": filepath.Join(dir, "keys")}
	if _, stderr, err := runTrustArgs(t, vars, "init", "--repo", "{repo}", "--keys", "{keys}"); err != nil {
		t.Fatalf("trust init: %v\n%s", err, stderr)
	}
	out, stderr, err := runTrustArgs(t, vars, "import-notary", "--server", srv.URL, "--ca", srv.CAFile, "--gun", gun,
		"--root-key-id", dct.RootKeyID(gun), "--repo", "{repo}", "--keys", "{keys}", "--publish")
	t.Logf("import %s:\n%s%s", gun, out, stderr)
	if err == nil || !strings.Contains(err.Error(), "1 tag(s)") ||
		!strings.Contains(out, "migrated 1.0 -> "+gun+":1.0") || !strings.Contains(out, "migrated 2.0 -> "+gun+":2.0") ||
		!strings.Contains(out, "refused alice: signed only by delegation targets/alice") || !strings.Contains(out, "published") {
		t.Fatalf("import of the DCT collection: %v", err)
	}
	out, stderr, err = runTrustArgs(t, vars, "import-notary", "--server", srv.URL, "--ca", srv.CAFile, "--gun", bundleGUN,
		"--root-cert", writeFileIn(t, dir, "signy-root.crt", signy.RootCert(bundleGUN)), "--content", "bundle",
		"--layout-key", owner, "--layout-key", badOwner, "--layout-key", otherOwner, "--repo", "{repo}", "--keys", "{keys}", "--publish")
	t.Logf("import %s:\n%s%s", bundleGUN, out, stderr)
	if err == nil || !strings.Contains(out, "migrated v1 -> "+bundleGUN+":v1: sha256:"+testenv.SignyBundleDigest.Encoded()+", 501 bytes, with 3 in-toto target(s)") ||
		!strings.Contains(out, "refused wrong-subject: its Signy in-toto payload does not verify") ||
		!strings.Contains(out, "refused v1-other-layout: its Signy payload brings a root layout different from another tag's") {
		t.Fatalf("import of the Signy collection: %v", err)
	}
	// Without a pinned layout key the Signy tag is refused, not migrated
	// without its in-toto (staged into a scratch repository).
	scratch := map[string]string{"repo": filepath.Join(dir, "scratch"), "keys": filepath.Join(dir, "scratch-keys")}
	if _, stderr, err := runTrustArgs(t, scratch, "init", "--repo", "{repo}", "--keys", "{keys}"); err != nil {
		t.Fatalf("trust init: %v\n%s", err, stderr)
	}
	if out, _, err := runTrustArgs(t, scratch, "import-notary", "--server", srv.URL, "--ca", srv.CAFile, "--gun", bundleGUN, "--content", "bundle",
		"--root-key-id", signy.RootKeyID(bundleGUN), "--repo", "{repo}"); err == nil ||
		!strings.Contains(out, "refused v1: its Signy in-toto payload's layout key is not one of the pinned layout keys") {
		t.Fatalf("import without a pinned layout key: %v\n%s", err, out)
	}
	// A wrong pin migrates nothing.
	if out, _, err := runTrustArgs(t, vars, "import-notary", "--server", srv.URL, "--ca", srv.CAFile, "--gun", gun,
		"--root-key-id", signy.RootKeyID(bundleGUN), "--repo", "{repo}"); err == nil || !strings.Contains(err.Error(), "does not match the root pinned") {
		t.Fatalf("import with a wrong pin: %v\n%s", err, out)
	}

	srv.Stop() // the Notary server is retired

	repo := vars["repo"]
	addr := startFromConfig(t, fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams:
  - {name: up, url: %q, default: true}
  - {name: signy, url: %q}
  - {name: signy2, url: %q}
trust:
  corp: {metadata: %q, root: %q}
policy:
  rules:
    - {name: acme, match: "up/**", mode: enforce, trust: corp, trustName: "%s/{repo}"}
    - {name: bundles, match: "signy*/**", mode: enforce, trust: corp, trustName: "%s/{repo}", require: [tuf, in-toto]}
`, filepath.Join(dir, "state"), up.URL, sup.URL, sup2.URL, filepath.Join(repo, "metadata"), filepath.Join(repo, "metadata", "1.root.json"),
		up.Host, sup.Host))

	for tag, img := range map[string]interface{ RawManifest() ([]byte, error) }{"1.0": one, "2.0": two} {
		got, err := crane.Manifest(addr+"/up/acme/app:"+tag, crane.Insecure)
		if err != nil || string(got) != string(raw(img)) {
			t.Errorf("migrated tag %s: %v", tag, err)
		}
	}
	if idx, err := crane.Manifest(addr+"/signy/cnab/thin-bundle:v1", crane.Insecure); err != nil || string(idx) != string(vec.Index) {
		t.Errorf("migrated Signy bundle v1 (in-toto required): %v", err)
	}
	for _, ref := range []string{"up/acme/app:alice", "up/acme/app:unsigned", "signy2/cnab/thin-bundle:wrong-subject",
		"signy/cnab/thin-bundle:v1-other-layout"} {
		_, err := crane.Manifest(addr+"/"+ref, crane.Insecure)
		t.Logf("%s: %v", ref, err)
		if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "no target") {
			t.Errorf("%s: %v; want a denial, it was not migrated", ref, err)
		}
	}
}

func writeFileIn(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
