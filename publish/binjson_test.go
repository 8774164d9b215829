package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The fast bin encoder produces byte for byte what go-tuf signs
// (securesystemslib's cjson of the signed part), its file parses back with
// go-tuf to the same bin, and it declines what it does not cover.
func TestBinEncoderMatchesCJSON(t *testing.T) {
	raw := func(s string) *json.RawMessage { m := json.RawMessage(s); return &m }
	tf := func(name string, custom *json.RawMessage) *metadata.TargetFiles {
		sum := sha256.Sum256([]byte(name))
		f := metadata.TargetFile()
		f.Path, f.Length, f.Hashes, f.Custom = name, int64(len(name))*1000, metadata.Hashes{"sha256": sum[:]}, custom
		return f
	}
	expires := time.Date(2027, 3, 1, 23, 19, 18, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		targets map[string]*metadata.TargetFiles
		edit    func(s *metadata.TargetsType)
		fast    bool
	}{
		{"empty", nil, nil, true},
		{"plain", map[string]*metadata.TargetFiles{
			"docker.io/acme/app:1.0": tf("docker.io/acme/app:1.0", raw(`{"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)),
			"ghcr.io/b/c:2":          tf("ghcr.io/b/c:2", nil),
			"a":                      tf("a", raw(`{}`)),
		}, nil, true},
		{"nested custom, unicode, escapes", map[string]*metadata.TargetFiles{
			"x/ünïcode:☃": tf("x/ünïcode:☃", raw(` { "z": [1, -2, {"b": true, "a": null}], "q\"uote": "back\\slash <&> \u2028", "n": 12345678901 } `)),
			"y:1":         tf("y:1", raw(`{"sha512":"`+fmt.Sprintf("%0128x", 7)+`"}`)),
		}, func(s *metadata.TargetsType) { s.Targets["y:1"].Hashes["sha512"] = bytes.Repeat([]byte{0xab}, 64) }, true},
		{"control character in custom", map[string]*metadata.TargetFiles{
			"a:1": tf("a:1", raw(`{"note":"line\nbreak"}`)),
		}, nil, false},
		{"invalid UTF-8 name", map[string]*metadata.TargetFiles{
			"a\xff:1": tf("a\xff:1", nil),
		}, nil, false},
		{"unrecognized field", map[string]*metadata.TargetFiles{"a:1": tf("a:1", nil)},
			func(s *metadata.TargetsType) { s.UnrecognizedFields = map[string]any{"extra": "x"} }, false},
		{"delegations", nil, func(s *metadata.TargetsType) { s.Delegations = &metadata.Delegations{} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := metadata.Targets(expires)
			md.Signed.Version = 42
			for k, v := range tc.targets {
				md.Signed.Targets[k] = v
			}
			if tc.edit != nil {
				tc.edit(&md.Signed)
			}
			var e binEncoder
			got, fast, err := e.canonical(&md.Signed)
			if err != nil || fast != tc.fast {
				t.Fatalf("fast = %v, %v; want %v", fast, err, tc.fast)
			}
			if !fast {
				return
			}
			want, err := cjson.EncodeCanonical(md.Signed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("canonical form differs:\n got %s\nwant %s", got, want)
			}
			sigs := []metadata.Signature{{KeyID: "ab12", Signature: []byte{1, 2, 3}}}
			file := newBinFile(&md.Signed, mustBody(t, &e, &md.Signed)).finish(sigs)
			back, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(file)
			if err != nil {
				t.Fatalf("go-tuf cannot parse the file: %v\n%s", err, file)
			}
			again, err := cjson.EncodeCanonical(back.Signed)
			if err != nil || !bytes.Equal(again, want) {
				t.Fatalf("round trip differs: %s, %v", again, err)
			}
			if len(back.Signatures) != 1 || back.Signatures[0].KeyID != "ab12" || !bytes.Equal(back.Signatures[0].Signature, []byte{1, 2, 3}) {
				t.Fatalf("signatures: %+v", back.Signatures)
			}
		})
	}
}

func mustBody(t *testing.T, e *binEncoder, s *metadata.TargetsType) []byte {
	t.Helper()
	b, ok, err := e.targetsBody(s)
	if err != nil || !ok {
		t.Fatalf("targetsBody: %v %v", ok, err)
	}
	return b
}
