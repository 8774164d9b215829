package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	intoto "github.com/in-toto/in-toto-golang/in_toto"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// signyPayload builds Signy's inline in-toto custom data for a Notary
// target ({"key","layout","links"}, file bytes as base64), as `signy sign
// --in-toto --layout … --links … --layout-key …` does.
func signyPayload(t *testing.T, layoutPath, linkDir, keyPath string) []byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := struct {
		Key    []byte            `json:"key"`
		Layout []byte            `json:"layout"`
		Links  map[string][]byte `json:"links"`
	}{Key: read(keyPath), Layout: read(layoutPath), Links: map[string][]byte{}}
	entries, err := os.ReadDir(linkDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".link") {
			p.Links[e.Name()] = read(filepath.Join(linkDir, e.Name()))
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rsaInTotoKeys makes RSA-PSS in-toto key pairs, the only kind Signy accepts.
func rsaInTotoKeys(t *testing.T) func(dir, name string) (priv, pub intoto.Key, pubPath string) {
	return func(dir, name string) (intoto.Key, intoto.Key, string) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return inTotoKeyFrom(t, dir, name, k)
	}
}

// Signy's inline in-toto, end to end: the Signy test vector signed into a
// real notary-server with a layout (RSA-PSS keys, as Signy requires), its
// key and links inline, verified without running anything with bundle.json
// as the subject; the inline layout key counts only if the rule pins it.
func TestSignyInTotoThroughTheProxy(t *testing.T) {
	srv := testenv.NewNotaryServer(t)
	sup, vec := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:v1")
	// The vector's invocation image is missing, so the index cannot be
	// tagged again: a second registry holds it as "wrong-subject", and its
	// rule maps it to the same GUN.
	sup2, _ := testenv.NewRegistryWithSignyVector(t, "cnab/thin-bundle:wrong-subject")
	dir := t.TempDir()
	rsaKey := rsaInTotoKeys(t)
	goodLayout, goodLinks, goodOwner := writeSupplyChainFor(t, filepath.Join(dir, "good"), "bundle.json", testenv.SignyBundleDigest.Encoded(), rsaKey)
	badLayout, badLinks, badOwner := writeSupplyChainFor(t, filepath.Join(dir, "bad"), "bundle.json", strings.Repeat("0", 64), rsaKey)
	_, _, strangerKey := rsaKey(dir, "stranger")

	signer := testenv.NewNotarySigner(t, srv.URL)
	gun := sup.Host + "/cnab/thin-bundle"
	signer.Init(gun)
	signer.Sign(gun, "v1", vec.BundleJSON, "targets", signyPayload(t, goodLayout, goodLinks, goodOwner))
	signer.Sign(gun, "wrong-subject", vec.BundleJSON, "targets", signyPayload(t, badLayout, badLinks, badOwner))

	addr := startFromConfig(t, fmt.Sprintf(`
storage: {inmemory: {}}
state: %[1]q
upstreams:
  - {name: pinned, url: %[2]q, default: true}
  - {name: stranger, url: %[2]q}
  - {name: unpinned, url: %[2]q}
  - {name: second, url: %[3]q}
trust:
  signy:
    notary:
      url: %[4]q
      pins:
        - {gun: %[5]q, rootKeyIDs: [%[6]q], content: bundle}
policy:
  rules:
    - {name: pinned, match: "pinned/**", mode: enforce, trust: signy, trustName: "%[7]s/{repo}", inToto: {layoutKeys: [%[8]q, %[9]q]}}
    - {name: second, match: "second/**", mode: enforce, trust: signy, trustName: "%[7]s/{repo}", inToto: {layoutKeys: [%[8]q, %[9]q]}}
    - {name: stranger, match: "stranger/**", mode: enforce, trust: signy, trustName: "%[7]s/{repo}", inToto: {layoutKeys: [%[10]q]}}
    - {name: unpinned, match: "unpinned/**", mode: enforce, trust: signy, trustName: "%[7]s/{repo}"}
`, filepath.Join(dir, "state"), sup.URL, sup2.URL, srv.URL, gun, signer.RootKeyID(gun), sup.Host,
		goodOwner, badOwner, strangerKey))

	idx, err := crane.Manifest(addr+"/pinned/cnab/thin-bundle:v1", crane.Insecure)
	if err != nil || string(idx) != string(vec.Index) {
		t.Fatalf("Signy bundle with a pinned layout key and links for its bundle.json: %v", err)
	}
	for ref, want := range map[string]string{
		"second/cnab/thin-bundle:wrong-subject": "in-toto: ",
		"stranger/cnab/thin-bundle:v1":          "is not pinned by rule",
		"unpinned/cnab/thin-bundle:v1":          "pins none",
	} {
		_, err := crane.Manifest(addr+"/"+ref, crane.Insecure)
		t.Logf("%s: %v", ref, err)
		if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want a denial containing %q", ref, err, want)
		}
	}
}
