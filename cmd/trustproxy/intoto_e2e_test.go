package main

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"
	intoto "github.com/in-toto/in-toto-golang/in_toto"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// inTotoKey makes an ed25519 key pair as in-toto keys, and writes the public
// PEM to dir/name.pub.
func inTotoKey(t *testing.T, dir, name string) (priv, pub intoto.Key, pubPath string) {
	t.Helper()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	return inTotoKeyFrom(t, dir, name, sk)
}

// inTotoKeyFrom is inTotoKey for a given private key (RSA keys get in-toto's
// rsassa-pss-sha256 scheme, the only one Signy accepts).
func inTotoKeyFrom(t *testing.T, dir, name string, sk crypto.Signer) (priv, pub intoto.Key, pubPath string) {
	t.Helper()
	der, _ := x509.MarshalPKCS8PrivateKey(sk)
	if err := priv.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(sk.Public())
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder})
	if err := pub.LoadKeyReaderDefaults(bytes.NewReader(pemPub)); err != nil {
		t.Fatal(err)
	}
	pubPath = filepath.Join(dir, name+".pub")
	os.WriteFile(pubPath, pemPub, 0o644)
	return priv, pub, pubPath
}

// writeSupplyChain writes a signed two-step layout (build creates
// manifest.json, package must take exactly build's product) and the two
// links recording subjectSHA as the product.
func writeSupplyChain(t *testing.T, dir, subjectSHA string) (layoutPath, linkDir, ownerPub string) {
	t.Helper()
	return writeSupplyChainFor(t, dir, "manifest.json", subjectSHA, func(dir, name string) (intoto.Key, intoto.Key, string) {
		return inTotoKey(t, dir, name)
	})
}

// writeSupplyChainFor is writeSupplyChain for another subject name and
// kind of key.
func writeSupplyChainFor(t *testing.T, dir, subjectName, subjectSHA string, newKey func(dir, name string) (priv, pub intoto.Key, pubPath string)) (layoutPath, linkDir, ownerPub string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ownerSK, _, ownerPub := newKey(dir, "owner")
	buildSK, buildPK, _ := newKey(dir, "builder")
	pkgSK, pkgPK, _ := newKey(dir, "packager")
	layout := intoto.Layout{Type: "layout", Inspect: []intoto.Inspection{},
		Expires: time.Now().UTC().Add(24 * time.Hour).Format("2006-01-02T15:04:05Z"),
		Keys:    map[string]intoto.Key{buildPK.KeyID: buildPK, pkgPK.KeyID: pkgPK},
		Steps: []intoto.Step{
			{Type: "step", PubKeys: []string{buildPK.KeyID}, Threshold: 1, ExpectedCommand: []string{},
				SupplyChainItem: intoto.SupplyChainItem{Name: "build",
					ExpectedMaterials: [][]string{{"DISALLOW", "*"}},
					ExpectedProducts:  [][]string{{"CREATE", subjectName}, {"DISALLOW", "*"}}}},
			{Type: "step", PubKeys: []string{pkgPK.KeyID}, Threshold: 1, ExpectedCommand: []string{},
				SupplyChainItem: intoto.SupplyChainItem{Name: "package",
					ExpectedMaterials: [][]string{{"MATCH", subjectName, "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}},
					ExpectedProducts:  [][]string{{"ALLOW", subjectName}, {"DISALLOW", "*"}}}},
		}}
	mb := &intoto.Metablock{Signed: layout, Signatures: []intoto.Signature{}}
	if err := mb.Sign(ownerSK); err != nil {
		t.Fatal(err)
	}
	layoutPath = filepath.Join(dir, "root.layout")
	if err := mb.Dump(layoutPath); err != nil {
		t.Fatal(err)
	}
	linkDir = filepath.Join(dir, "links")
	os.MkdirAll(linkDir, 0o755)
	subject := map[string]intoto.HashObj{subjectName: {"sha256": subjectSHA}}
	for _, s := range []struct {
		step      string
		key       intoto.Key
		materials map[string]intoto.HashObj
	}{{"build", buildSK, map[string]intoto.HashObj{}}, {"package", pkgSK, subject}} {
		l := &intoto.Metablock{Signed: intoto.Link{Type: "link", Name: s.step, Materials: s.materials, Products: subject,
			ByProducts: map[string]any{}, Command: []string{}, Environment: map[string]any{}}}
		if err := l.Sign(s.key); err != nil {
			t.Fatal(err)
		}
		if err := l.Dump(filepath.Join(linkDir, fmt.Sprintf(intoto.LinkNameFormat, s.step, s.key.KeyID))); err != nil {
			t.Fatal(err)
		}
	}
	return layoutPath, linkDir, ownerPub
}

// End to end: the publisher CLI publishes an image with its in-toto layout,
// keys and links; trustproxy, with a rule that requires in-toto, serves it
// to crane, and refuses an image whose links record another subject and an
// image with no in-toto metadata.
func TestInTotoThroughTheProxy(t *testing.T) {
	up := testenv.NewRegistry(t)
	good := up.PushRandomImage(t, "acme/app:1.0", 1024, 2, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/app:other", 1024, 2, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/app:plain", 1024, 2, types.OCIManifestSchema1)
	gd, _ := good.Digest()

	dir := t.TempDir()
	repo, keys := filepath.Join(dir, "repo"), filepath.Join(dir, "keys")
	layoutPath, linkDir, ownerPub := writeSupplyChain(t, filepath.Join(dir, "ops"), gd.Hex)
	trust := func(args ...string) { t.Helper(); mustTrust(t, args...) }
	trust("init", "--repo", repo, "--keys", keys)
	common := []string{"--repo", repo, "--insecure", "--name", "up/acme/app"}
	withInToto := []string{"--in-toto-layout", layoutPath, "--in-toto-links", linkDir, "--in-toto-pubkey", ownerPub}
	trust(append(append([]string{"add", up.Host + "/acme/app:1.0"}, common...), withInToto...)...)
	// "other" carries links that record the good image, not itself.
	trust(append(append([]string{"add", up.Host + "/acme/app:other"}, common...), withInToto...)...)
	trust(append([]string{"add", up.Host + "/acme/app:plain"}, common...)...)
	trust("publish", "--repo", repo, "--keys", keys)

	addr := startFromConfig(t, fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams:
  - {name: up, url: %q, default: true}
trust:
  corp: {metadata: %q, root: %q}
policy:
  rules:
    - {name: acme, match: "up/acme/**", mode: enforce, trust: corp, require: [tuf, in-toto]}
`, filepath.Join(dir, "state"), up.URL, filepath.Join(repo, "metadata"), filepath.Join(repo, "metadata", "1.root.json")))

	img, err := crane.Pull(addr+"/up/acme/app:1.0", crane.Insecure)
	if err != nil {
		t.Fatalf("in-toto verified pull: %v", err)
	}
	if d, _ := img.Digest(); d != gd {
		t.Fatalf("pulled %s, want %s", d, gd)
	}
	for tag, want := range map[string]string{
		"other": "in-toto: ",
		"plain": "rule requires in-toto but target",
	} {
		_, err := crane.Manifest(addr+"/up/acme/app:"+tag, crane.Insecure)
		t.Logf("%s: %v", tag, err)
		if err == nil || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a denial containing %q", tag, err, want)
		}
	}
}

// mustTrust runs `trustproxy trust args...` and fails the test on an error.
func mustTrust(t *testing.T, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := runTrust(t.Context(), args, &out, &errb); err != nil {
		t.Fatalf("trust %v: %v\n%s%s", args, err, out.String(), errb.String())
	}
}
