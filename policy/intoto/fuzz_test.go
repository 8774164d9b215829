package intoto

import (
	"testing"
)

// FuzzParseMetadata: layouts and links come from a trust server; no input
// may panic the parser.
func FuzzParseMetadata(f *testing.F) {
	// Real signed metadata of both envelope forms, besides testdata/fuzz.
	fx := newFixture(f)
	f.Add(signClassic(f, fx.layout(), fx.k.owner))
	f.Add(signDSSE(f, fx.buildLink(), fx.k.build))
	f.Add([]byte(`{"signed":{"_type":"link","name":"x"},"signatures":[]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`))
	f.Add([]byte(`{"signed":null,"signatures":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := parseMetadata(b)
		if err == nil && md == nil {
			t.Fatal("nil metadata without an error")
		}
	})
}

// FuzzParsePublicKey: layout keys come from configuration and from TUF
// targets; no input may panic the parser, and a parsed key has an ID.
func FuzzParsePublicKey(f *testing.F) {
	k := testKeys(f)
	f.Add(k.owner.pubPEM)
	f.Add(k.pkgA.pubPEM)
	f.Add(k.pkgB.pubPEM)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePublicKey(b)
		if err == nil && k.KeyID == "" {
			t.Fatal("parsed key without an ID")
		}
	})
}
