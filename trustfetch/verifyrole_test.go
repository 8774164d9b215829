package trustfetch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// referenceCanonical is what go-tuf signs and verifies: go-securesystemslib's
// canonical JSON of the decoded value.
func referenceCanonical(t testing.TB, in []byte) ([]byte, error) {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return cjson.EncodeCanonical(v)
}

func TestCanonicalMatchesReference(t *testing.T) {
	for _, in := range []string{
		`{"b":1,"a":[true,false,null,"x"],"c":{"z":"\u00e9\n\t\"\\/","y":-12}}`,
		`  { "signed" : { "_type" : "targets", "targets": {"a:1": {"length": 3, "hashes": {"sha256": "ab"}}}} }  `,
		`{"a&b":"<tag>","\u0061":"é","ü":1,"u":2,"😀":"\ud83d\ude00"}`,
		`["",{},[],0,9223372036854775807,-9223372036854775808]`,
		`{"k":"\b\f\r\u0001\u001f"}`,
	} {
		d, err := parseJSON([]byte(in))
		if err != nil {
			t.Fatalf("parse %s: %v", in, err)
		}
		got, err := d.canonical(0, nil)
		if err != nil {
			t.Fatalf("canonical %s: %v", in, err)
		}
		want, err := referenceCanonical(t, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("canonical(%s)\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestParseRefusesAmbiguousJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"a":2}`,
		`{"a":1,"\u0061":2}`,                             // the same key once unescaped
		`{"x":{"k":[{"a":1,"a":1}]}}`,                    // nested
		`{"a":"\ud800"}`,                                 // lone high surrogate
		`{"a":"\udc00"}`,                                 // lone low surrogate
		`{"a":"\ud800\u0041"}`,                           // high surrogate without its pair
		"{\"a\":\"\xff\"}",                               // invalid UTF-8
		"{\"a\":\"\x01\"}",                               // raw control character
		`{"a":1.0}`, `{"a":1e3}`, `{"a":-0}`, `{"a":01}`, // not canonical integers
		`{"a":99999999999999999999}`, // beyond int64
		`{"a":1} {}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `[1 2]`, `"\x"`, `tru`,
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	} {
		d, err := parseJSON([]byte(in))
		if err == nil {
			_, err = d.canonical(0, nil)
		}
		if err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":"\u00e9"}`, `[1,{"x":null}]`, `{"a":{"b":[true]}}`, `"\ud83d\ude00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := parseJSON(in)
		if err != nil {
			return
		}
		got, err := d.canonical(0, nil)
		if err != nil {
			return
		}
		// Whatever this parser accepts, the reference reads the same way.
		want, err := referenceCanonical(t, in)
		if err != nil {
			t.Fatalf("accepted %q, which the reference refuses: %v", in, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("canonical(%q)\n got %q\nwant %q", in, got, want)
		}
	})
}

// TestTargetsRoleAttacks serves a tampered second version of a delegated
// role. The snapshot vouches for the tampered bytes where the attack needs
// it, so that the role's own verification is what must refuse it: each
// refresh fails and the first version's targets stay in force.
func TestTargetsRoleAttacks(t *testing.T) {
	const role, name = "team", "team/app:1"
	tamper := func(r *testRepo, f func(b []byte) []byte) {
		md := r.roles[role]
		md.Signed.Targets["team/app:2"] = md.Signed.Targets[name]
		r.dirty[role] = true
		r.signRole(role)
		b := f(r.roleFiles[role].bytes)
		r.writeMeta(fmt.Sprintf("%d.%s.json", md.Signed.Version, role), b)
		r.roleFiles[role] = signedFile{md.Signed.Version, b}
		r.signSnapshot()
		r.signTimestamp()
	}
	tests := []struct {
		name   string
		attack func(r *testRepo)
		want   error // nil: any refusal
	}{
		{"bad signature", func(r *testRepo) {
			tamper(r, func(b []byte) []byte {
				i := bytes.Index(b, []byte(`"sig":"`)) + len(`"sig":"`)
				if b[i] == '0' {
					b[i] = '1'
				} else {
					b[i] = '0'
				}
				return b
			})
		}, &metadata.ErrUnsignedMetadata{}},
		{"wrong hash versus snapshot", func(r *testRepo) {
			r.roles[role].Signed.Targets["team/app:2"] = r.roles[role].Signed.Targets[name]
			r.dirty[role] = true
			r.publish()
			// A validly signed other file of the same version and length
			// under the name the snapshot lists.
			md := r.roles[role]
			md.Signed.Targets["team/app:3"] = md.Signed.Targets["team/app:2"]
			delete(md.Signed.Targets, "team/app:2")
			md.ClearSignatures()
			_, err := md.Sign(r.signers[role][0])
			must(t, err)
			b, err := md.ToBytes(false)
			must(t, err)
			r.writeMeta(fmt.Sprintf("%d.%s.json", md.Signed.Version, role), b)
		}, &metadata.ErrLengthOrHashMismatch{}},
		{"rollback of the role version", func(r *testRepo) {
			v1 := r.roleFiles[role].bytes
			tamper(r, func([]byte) []byte { return v1 })
		}, &metadata.ErrBadVersionNumber{}},
		{"expired role", func(r *testRepo) {
			r.roles[role].Signed.Expires = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			tamper(r, func(b []byte) []byte { return b })
		}, &metadata.ErrExpiredMetadata{}},
		{"duplicate key", func(r *testRepo) {
			tamper(r, func(b []byte) []byte {
				// A second entry for the name, after the signed one: a
				// last-wins decoder would read it.
				evil := `"team/app:1":{"hashes":{"sha256":"` + strings.Repeat("ab", 32) + `"},"length":1},`
				return bytes.Replace(b, []byte(`"targets":{`), []byte(`"targets":{`+evil), 1)
			})
		}, nil},
		{"escape that changes the signed text", func(r *testRepo) {
			tamper(r, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"team/app:2"`), []byte(`"team/app:\u0033"`), 1)
			})
		}, &metadata.ErrUnsignedMetadata{}},
		{"lone surrogate", func(r *testRepo) {
			tamper(r, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"team/app:2"`), []byte(`"team/app:\ud800"`), 1)
			})
		}, nil},
		{"number not in canonical form", func(r *testRepo) {
			tamper(r, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"length":`), []byte(`"length":0`), 1)
			})
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: role, Paths: []string{"team/*"}}, 1)
			r.addTarget(role, name, []byte("one"), `{"mediaType":"x"}`)
			r.addTarget(role, "elsewhere/app:1", []byte("out"), "") // outside the role's paths
			r.publish()
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			ix := mustIndex(t, repo)
			if _, ok := ix.Lookup("elsewhere/app:1"); ok || ix.Len() != 1 {
				t.Fatalf("a target outside the delegated paths is vouched for (%d targets)", ix.Len())
			}

			tc.attack(r)
			err := repo.Refresh(t.Context())
			if err == nil {
				t.Fatal("tampered role accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("refresh: %v, want %T", err, tc.want)
			}
			if !errors.Is(err, &metadata.ErrRepository{}) {
				t.Fatalf("refresh: %v is not a refusal (ErrRepository)", err)
			}
			ix = mustIndex(t, repo)
			if _, ok := ix.Lookup("team/app:2"); ok {
				t.Fatal("a target of the tampered role is vouched for")
			}
			if _, ok := ix.Lookup(name); !ok {
				t.Fatal("the verified first version is no longer in force")
			}
		})
	}
}

// An escape that decodes to the very text that was signed is the signed
// content: accepted, and read as the signed name.
func TestEscapedSignedTextIsTheSignedText(t *testing.T) {
	r := newTestRepo(t)
	r.addTarget(metadata.TARGETS, "a/b&c:1", []byte("x"), `{"mediaType":"m<1>"}`)
	r.publish()
	if !bytes.Contains(r.roleFiles[metadata.TARGETS].bytes, []byte(`\u0026`)) {
		t.Fatal("go-tuf no longer escapes '&': the test needs another escape")
	}
	srv := newTrustServer(t, r.dir)
	ix := mustIndex(t, r.open(srv.metadataURL(), nil))
	tg, ok := ix.Lookup("a/b&c:1")
	if !ok || tg.MediaType() != "m<1>" {
		t.Fatalf("Lookup = %+v, %v", tg, ok)
	}
}
