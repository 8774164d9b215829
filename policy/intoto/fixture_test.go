package intoto

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
)

// testKey is a real key pair in in-toto's form.
type testKey struct {
	priv   in_toto.Key // signing key (KeyVal.Private set)
	pub    in_toto.Key // what a layout lists
	pubPEM []byte      // PKIX PEM, as published for layout keys
}

func newTestKey(t testing.TB, signer crypto.Signer) testKey {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	var k testKey
	if err := k.priv.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	k.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := k.pub.LoadKeyReaderDefaults(bytes.NewReader(k.pubPEM)); err != nil {
		t.Fatal(err)
	}
	if k.pub.KeyID != k.priv.KeyID {
		t.Fatalf("private and public key ids differ: %s %s", k.priv.KeyID, k.pub.KeyID)
	}
	return k
}

func genED25519(t testing.TB) testKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, priv)
}

func genECDSA(t testing.TB) testKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, priv)
}

func genRSA(t testing.TB) testKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return newTestKey(t, priv)
}

// keySet is generated once per test binary: RSA generation is slow and the
// keys carry no state.
type keySet struct {
	owner    testKey // ed25519 layout key
	ownerRSA testKey // rsa-pss layout key
	rogue    testKey // signs what it should not
	build    testKey // ed25519 functionary of "build"
	pkgA     testKey // ecdsa P-256 functionary of "package"
	pkgB     testKey // rsa-pss functionary of "package"
}

var (
	keysOnce sync.Mutex
	keysVal  *keySet
)

func testKeys(t testing.TB) *keySet {
	t.Helper()
	keysOnce.Lock()
	defer keysOnce.Unlock()
	if keysVal == nil {
		keysVal = &keySet{
			owner: genED25519(t), ownerRSA: genRSA(t), rogue: genED25519(t),
			build: genED25519(t), pkgA: genECDSA(t), pkgB: genRSA(t),
		}
	}
	return keysVal
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fixture is a two-step supply chain: "build" turns src.txt into app.bin,
// "package" (threshold 2) turns app.bin into manifest.json, the subject.
type fixture struct {
	k        *keySet
	now      time.Time
	src, app []byte
	manifest []byte
}

func newFixture(t testing.TB) *fixture {
	return &fixture{
		k:        testKeys(t),
		now:      time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		src:      []byte("package main\n"),
		app:      randomBytes(t, 64),
		manifest: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","n":"` + hex.EncodeToString(randomBytes(t, 8)) + `"}`),
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) layout() in_toto.Layout {
	k := f.k
	return in_toto.Layout{
		Type:    "layout",
		Expires: f.now.Add(30 * 24 * time.Hour).Format(in_toto.ISO8601DateSchema),
		Readme:  "two-step test supply chain",
		Keys: map[string]in_toto.Key{
			k.build.pub.KeyID: k.build.pub, k.pkgA.pub.KeyID: k.pkgA.pub, k.pkgB.pub.KeyID: k.pkgB.pub,
		},
		Steps: []in_toto.Step{
			{
				Type: "step", PubKeys: []string{k.build.pub.KeyID}, Threshold: 1,
				ExpectedCommand: []string{"go", "build"},
				SupplyChainItem: in_toto.SupplyChainItem{
					Name:              "build",
					ExpectedMaterials: [][]string{{"ALLOW", "src.txt"}, {"DISALLOW", "*"}},
					ExpectedProducts:  [][]string{{"CREATE", "app.bin"}, {"DISALLOW", "*"}},
				},
			},
			{
				Type: "step", PubKeys: []string{k.pkgA.pub.KeyID, k.pkgB.pub.KeyID}, Threshold: 2,
				ExpectedCommand: []string{"package"},
				SupplyChainItem: in_toto.SupplyChainItem{
					Name:              "package",
					ExpectedMaterials: [][]string{{"MATCH", "app.bin", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}},
					ExpectedProducts:  [][]string{{"CREATE", "manifest.json"}, {"DISALLOW", "*"}},
				},
			},
		},
		Inspect: []in_toto.Inspection{},
	}
}

func link(name string, materials, products map[string][]byte) in_toto.Link {
	art := func(m map[string][]byte) map[string]in_toto.HashObj {
		out := map[string]in_toto.HashObj{}
		for n, b := range m {
			out[n] = in_toto.HashObj{"sha256": sha256Hex(b)}
		}
		return out
	}
	return in_toto.Link{
		Type: "link", Name: name, Materials: art(materials), Products: art(products),
		ByProducts: map[string]any{"return-value": 0, "stdout": "", "stderr": ""},
		Command:    []string{name}, Environment: map[string]any{},
	}
}

func (f *fixture) buildLink() in_toto.Link {
	return link("build", map[string][]byte{"src.txt": f.src}, map[string][]byte{"app.bin": f.app})
}

func (f *fixture) packageLink(manifest []byte) in_toto.Link {
	return link("package", map[string][]byte{"app.bin": f.app}, map[string][]byte{"manifest.json": manifest})
}

// signClassic wraps a layout or link in a classic metablock signed by keys.
func signClassic(t testing.TB, payload any, keys ...testKey) []byte {
	t.Helper()
	mb := &in_toto.Metablock{Signed: payload, Signatures: []in_toto.Signature{}}
	for _, k := range keys {
		if err := mb.Sign(k.priv); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(mb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signDSSE builds the envelope with go-securesystemslib/dsse, as the research
// notes recommend: in_toto.Envelope.SetPayload emits raw newlines inside PEM
// strings, which no loader accepts.
func signDSSE(t testing.TB, payload any, keys ...testKey) []byte {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	var signers []dsse.Signer
	for _, k := range keys {
		sk := &signerverifier.SSLibKey{KeyID: k.priv.KeyID, KeyType: k.priv.KeyType, Scheme: k.priv.Scheme,
			KeyIDHashAlgorithms: k.priv.KeyIDHashAlgorithms,
			KeyVal:              signerverifier.KeyVal{Public: k.priv.KeyVal.Public, Private: k.priv.KeyVal.Private}}
		var s dsse.Signer
		switch k.priv.KeyType {
		case "ed25519":
			s, err = signerverifier.NewED25519SignerVerifierFromSSLibKey(sk)
		case "ecdsa":
			s, err = signerverifier.NewECDSASignerVerifierFromSSLibKey(sk)
		case "rsa":
			s, err = signerverifier.NewRSAPSSSignerVerifierFromSSLibKey(sk)
		}
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	es, err := dsse.NewEnvelopeSigner(signers...)
	if err != nil {
		t.Fatal(err)
	}
	env, err := es.SignPayload(context.Background(), in_toto.PayloadType, body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goodLinks are the three links of an honest run: build, and package by both
// of its functionaries.
func (f *fixture) goodLinks(t testing.TB, sign func(testing.TB, any, ...testKey) []byte) [][]byte {
	return [][]byte{
		sign(t, f.buildLink(), f.k.build),
		sign(t, f.packageLink(f.manifest), f.k.pkgA),
		sign(t, f.packageLink(f.manifest), f.k.pkgB),
	}
}

func (f *fixture) input(layout []byte, links [][]byte, layoutKeys ...testKey) Input {
	if len(layoutKeys) == 0 {
		layoutKeys = []testKey{f.k.owner}
	}
	var pubs [][]byte
	for _, k := range layoutKeys {
		pubs = append(pubs, k.pubPEM)
	}
	return Input{
		Layout: layout, LayoutKeys: pubs, Links: links,
		SubjectName: "manifest.json", SubjectSHA256: sha256Hex(f.manifest), Now: f.now,
	}
}

// certFunctionary is a functionary identified by an X.509 certificate under a
// CA that the layout lists in rootcas.
type certFunctionary struct {
	ca   in_toto.Key // rootcas entry
	leaf testKey     // priv carries the certificate, so signatures embed it
}

func newCertFunctionary(t testing.TB, uri string, notAfter time.Time) certFunctionary {
	t.Helper()
	caPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caPriv.Public(), caPriv)
	if err != nil {
		t.Fatal(err)
	}
	var ca in_toto.Key
	if err := ca.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))); err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "packager"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, URIs: []*url.URL{u},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, leafPriv.Public(), caPriv)
	if err != nil {
		t.Fatal(err)
	}
	leaf := newTestKey(t, leafPriv)
	leaf.priv.KeyVal.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}))
	return certFunctionary{ca: ca, leaf: leaf}
}
