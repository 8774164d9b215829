package intoto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

func TestParsePublicKey(t *testing.T) {
	k := testKeys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Key := newTestKey(t, p384)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, err := x509.MarshalPKIXPublicKey(small.Public())
	if err != nil {
		t.Fatal(err)
	}
	sslib := func(key in_toto.Key, public string) []byte {
		b, err := json.Marshal(map[string]any{
			"keytype": key.KeyType, "scheme": key.Scheme, "keyid_hash_algorithms": key.KeyIDHashAlgorithms,
			"keyval": map[string]string{"public": public},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	tests := []struct {
		name   string
		in     []byte
		wantID string // "" = compare with the in-toto-golang PEM key id of the same key
		want   string // error substring
		key    testKey
	}{
		{name: "ed25519 PEM", in: k.owner.pubPEM, key: k.owner},
		{name: "ecdsa P-256 PEM", in: k.pkgA.pubPEM, key: k.pkgA},
		{name: "rsa PEM", in: k.pkgB.pubPEM, key: k.pkgB},
		{name: "ed25519 securesystemslib JSON", in: sslib(k.build.pub, k.build.pub.KeyVal.Public), key: k.build},
		{name: "ecdsa P-384 PEM gets the nistp384 scheme", in: p384Key.pubPEM, wantID: mustKeyID(t, in_toto.Key{
			KeyType: "ecdsa", Scheme: "ecdsa-sha2-nistp384", KeyIDHashAlgorithms: []string{"sha256", "sha512"},
			KeyVal: in_toto.KeyVal{Public: strings.TrimSpace(string(p384Key.pubPEM))}})},
		{
			// Python keeps the PEM's trailing newline: another key id.
			name: "ecdsa JSON with Python's trailing newline",
			in:   sslib(k.pkgA.pub, k.pkgA.pub.KeyVal.Public+"\n"),
			wantID: mustKeyID(t, in_toto.Key{KeyType: "ecdsa", Scheme: "ecdsa-sha2-nistp256",
				KeyIDHashAlgorithms: []string{"sha256", "sha512"}, KeyVal: in_toto.KeyVal{Public: k.pkgA.pub.KeyVal.Public + "\n"}}),
		},
		{name: "private PEM", in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), want: `want "PUBLIC KEY"`},
		{name: "private JSON", in: mustJSON(t, k.build.priv), want: "holds a private key"},
		{name: "JSON with a lying keyid", in: []byte(strings.Replace(string(mustJSON(t, k.build.pub)), k.build.pub.KeyID, k.owner.pub.KeyID, 1)),
			want: "but the key hashes to"},
		{name: "JSON with an unknown field", in: []byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"},"x":1}`), want: `unknown field "x"`},
		{name: "short ed25519 key", in: sslib(k.build.pub, "abcd"), want: "not 32 hex-encoded bytes"},
		{name: "ecdsa keytype on an RSA key", in: sslib(k.pkgA.pub, k.pkgB.pub.KeyVal.Public), want: "keytype ecdsa but the PEM holds a *rsa.PublicKey"},
		{name: "RSA 1024", in: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}), want: "RSA key of 1024 bits"},
		{name: "garbage", in: []byte("hello"), want: "neither PEM nor securesystemslib JSON"},
		{name: "empty", in: nil, want: "empty input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePublicKey(tc.in)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("ParsePublicKey error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			want := tc.wantID
			if want == "" {
				want = tc.key.pub.KeyID
			}
			if got.KeyID != want {
				t.Fatalf("key id %s, want %s", got.KeyID, want)
			}
			if got.KeyVal.Private != "" {
				t.Fatal("parsed key carries a private part")
			}
		})
	}
}

func mustKeyID(t *testing.T, k in_toto.Key) string {
	t.Helper()
	id, err := computeKeyID(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
