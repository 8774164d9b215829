package intoto

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

func TestParseMetadata(t *testing.T) {
	f := newFixture(t)
	classic := signClassic(t, f.buildLink(), f.k.build)
	// Signed, but encoding/json folds "NAME" onto "name" and the last wins:
	// the struct would say another step than the signed bytes.
	var folded map[string]any
	if err := json.Unmarshal(mustJSON(t, f.buildLink()), &folded); err != nil {
		t.Fatal(err)
	}
	folded["NAME"] = "package"
	foldedMB := in_toto.Metablock{Signed: folded}
	if err := foldedMB.Sign(f.k.build.priv); err != nil {
		t.Fatal(err)
	}
	envelope := signDSSE(t, f.buildLink(), f.k.build)

	tests := []struct {
		name string
		in   []byte
		want string // error substring; "" = parses, and the signature verifies
	}{
		{name: "classic link", in: classic},
		{name: "DSSE link", in: envelope},
		{name: "trailing data", in: append(append([]byte{}, classic...), []byte(` {}`)...), want: "trailing data"},
		{name: "unknown top-level field", in: []byte(strings.Replace(string(classic), `{"signed"`, `{"x":1,"signed"`, 1)), want: `unexpected top-level field "x"`},
		{name: "no signatures", in: []byte(`{"signed":{"_type":"link"},"signatures":null}`), want: `needs "signed" and "signatures"`},
		{name: "unknown type", in: []byte(`{"signed":{"_type":"thing"},"signatures":[]}`), want: `payload _type "thing"`},
		{name: "missing field", in: []byte(`{"signed":{"_type":"link","name":"x"},"signatures":[]}`), want: `required field "materials" missing`},
		{name: "unknown signature field", in: []byte(strings.Replace(string(classic), `"sig":`, `"extra":"1","sig":`, 1)), want: `unknown field "extra"`},
		{name: "DSSE without signatures", in: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), want: "no signatures"},
		{name: "DSSE payload not base64", in: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[{"keyid":"a","sig":"b"}]}`), want: "DSSE payload"},
		{name: "not JSON", in: []byte("link"), want: "not JSON"},
		{name: "signed field read differently", in: mustJSON(t, foldedMB), want: "field NAME is signed but not understood"},
		{name: "float in signed payload", in: []byte(strings.Replace(string(classic), `"return-value":0`, `"return-value":0.5`, 1)), want: "no canonical JSON form"},
		{name: "duplicate field merged by the decoder", in: []byte(strings.Replace(string(classic), `"materials"`, `"environment":{"x":1},"materials"`, 1)), want: "field environment.x is signed but not understood"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md, err := parseMetadata(tc.in)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parseMetadata error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMetadata: %v", err)
			}
			if _, ok := md.GetPayload().(in_toto.Link); !ok {
				t.Fatalf("payload is %T", md.GetPayload())
			}
			if err := md.VerifySignature(f.k.build.pub); err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
			if err := md.VerifySignature(f.k.owner.pub); err == nil {
				t.Fatal("VerifySignature accepted another key")
			}
			if _, err := md.GetSignatureForKeyID(f.k.build.pub.KeyID); err != nil {
				t.Fatalf("GetSignatureForKeyID: %v", err)
			}
		})
	}
}

// A DSSE envelope over metadata holding ECDSA and RSA keys (PEM strings with
// newlines) verifies: the in-toto-golang SetPayload bug does not apply to
// envelopes read from bytes.
func TestDSSELayoutWithPEMKeys(t *testing.T) {
	f := newFixture(t)
	md, err := parseMetadata(signDSSE(t, f.layout(), f.k.ownerRSA))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := md.GetPayload().(in_toto.Layout)
	if !ok || l.Keys[f.k.pkgA.pub.KeyID].KeyVal.Public != f.k.pkgA.pub.KeyVal.Public {
		t.Fatalf("payload lost the ECDSA key: %T", md.GetPayload())
	}
	if err := md.VerifySignature(f.k.ownerRSA.pub); err != nil {
		t.Fatal(err)
	}
	if err := md.Sign(f.k.ownerRSA.priv); !errors.Is(err, errReadOnly) {
		t.Fatalf("Sign: %v", err)
	}
	if err := md.Dump(t.TempDir() + "/x"); !errors.Is(err, errReadOnly) {
		t.Fatalf("Dump: %v", err)
	}
}
