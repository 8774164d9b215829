package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// End to end with Debian's notary-server: tags signed with the real notary
// CLI the way DCT (targets/releases) and Signy (bundle.json in targets)
// do, pulled through trustproxy from real registries.
func TestNotaryThroughTheProxy(t *testing.T) {
	srv := testenv.NewNotaryServerTLS(t) // https with a private CA, as DCT requires
	up := testenv.NewRegistry(t)
	signed := up.PushRandomImage(t, "acme/app:1.0", 1024, 2, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/other:1.0", 1024, 1, types.OCIManifestSchema1)
	up.PushRandomImage(t, "impostor/app:1.0", 1024, 1, types.OCIManifestSchema1)
	sup, vec := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:v1")

	// DCT: `docker trust signer add` + `docker push` with content trust.
	dct := testenv.NewNotarySignerFor(t, srv)
	gun := up.Host + "/acme/app"
	dct.Init(gun)
	dct.AddReleases(gun)
	raw, err := signed.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	dct.Sign(gun, "1.0", raw, "targets/releases", nil)
	// Another collection whose root is not the one pinned for it.
	impostor := testenv.NewNotarySignerFor(t, srv)
	impostor.Init(up.Host + "/impostor/app")
	impostorRaw, _ := crane.Manifest(up.Host+"/impostor/app:1.0", crane.Insecure)
	impostor.Sign(up.Host+"/impostor/app", "1.0", impostorRaw, "targets", nil)
	// Signy: `signy sign bundle.json <ref>` signs the bundle.json bytes.
	signy := testenv.NewNotarySignerFor(t, srv)
	bundleGUN := sup.Host + "/cnab/thin-bundle"
	signy.Init(bundleGUN)
	signy.Sign(bundleGUN, "v1", vec.BundleJSON, "targets", nil)

	dir := t.TempDir()
	addr := startFromConfig(t, fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams:
  - {name: up, url: %q, default: true}
  - {name: signy, url: %q}
trust:
  dct:
    notary:
      url: %q
      ca: %q
      pins:
        - {gun: %q, rootKeyIDs: [%q]}
        - {gun: %q, rootKeyIDs: [%q]}
  signy:
    notary:
      url: %q
      ca: %q
      pins:
        - {gun: %q, rootKeyIDs: [%q], content: bundle}
policy:
  rules:
    - {name: acme, match: "up/**", mode: enforce, trust: dct, trustName: "%s/{repo}"}
    - {name: bundles, match: "signy/**", mode: enforce, trust: signy, trustName: "%s/{repo}"}
`, filepath.Join(dir, "state"), up.URL, sup.URL,
		srv.URL, srv.CAFile, up.Host+"/acme/*", dct.RootKeyID(gun), up.Host+"/impostor/*", dct.RootKeyID(gun),
		srv.URL, srv.CAFile, bundleGUN, signy.RootKeyID(bundleGUN), up.Host, sup.Host))

	wantDigest, _ := signed.Digest()
	pull := func(ref string) (string, error) {
		img, err := crane.Pull(addr+"/"+ref, crane.Insecure)
		if err != nil {
			return "", err
		}
		d, err := img.Digest()
		return d.String(), err
	}
	if d, err := pull("up/acme/app:1.0"); err != nil || d != wantDigest.String() {
		t.Fatalf("signed tag: %s, %v; want %s", d, err, wantDigest)
	}
	// The upstream tag moves; the proxy keeps serving what was signed.
	up.PushRandomImage(t, "acme/app:1.0", 1024, 1, types.OCIManifestSchema1)
	if d, err := pull("up/acme/app:1.0"); err != nil || d != wantDigest.String() {
		t.Fatalf("signed tag after the upstream moved it: %s, %v; want %s", d, err, wantDigest)
	}
	if _, err := pull(fmt.Sprintf("up/acme/app@%s", wantDigest)); err != nil {
		t.Fatalf("signed digest: %v", err)
	}
	for ref, want := range map[string]string{
		"up/acme/app:unsigned": `no target "` + gun + `:unsigned"`,
		"up/acme/other:1.0":    "has no trust data for it (unsigned)",
		"up/impostor/app:1.0":  "root.json does not match the root pinned",
		"up/elsewhere/app:1.0": "matches GUN",
	} {
		_, err := crane.Manifest(addr+"/"+ref, crane.Insecure)
		t.Logf("%s: %v", ref, err)
		if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a denial containing %q", ref, err, want)
		}
	}

	// The Signy test vector: the signed bundle.json (501 bytes, c7e92bd5…)
	// approves the cnab-to-oci index pushed under the tag.
	idx, err := crane.Manifest(addr+"/signy/cnab/thin-bundle:v1", crane.Insecure)
	if err != nil || string(idx) != string(vec.Index) {
		t.Fatalf("Signy bundle index: %v", err)
	}
	resp, err := http.Get("http://" + addr + "/v2/signy/cnab/thin-bundle/blobs/" + testenv.SignyBundleDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != string(vec.BundleJSON) {
		t.Fatalf("bundle.json through the proxy: %d %q", resp.StatusCode, b)
	}
}
