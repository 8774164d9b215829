package intoto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
)

func TestVerify(t *testing.T) {
	f := newFixture(t)
	k := f.k
	other := []byte(`{"schemaVersion":2,"other":true}`)

	tests := []struct {
		name string
		in   func(t *testing.T) Input
		want string // substring of the denial; "" = must pass
		// check runs on success
		check func(t *testing.T, r Result)
	}{
		{
			name: "two steps, threshold 2, classic",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
			},
			check: func(t *testing.T, r Result) {
				if !slices.Equal(r.Steps, []string{"build", "package"}) {
					t.Errorf("Steps = %v", r.Steps)
				}
				want := []string{k.build.pub.KeyID, k.pkgA.pub.KeyID, k.pkgB.pub.KeyID}
				slices.Sort(want)
				if !slices.Equal(r.Functionaries, want) {
					t.Errorf("Functionaries = %v, want %v", r.Functionaries, want)
				}
				if r.BoundBy != `step "package"` {
					t.Errorf("BoundBy = %q", r.BoundBy)
				}
				if r.LayoutSHA256 == "" || len(r.LayoutSHA256) != 64 {
					t.Errorf("LayoutSHA256 = %q", r.LayoutSHA256)
				}
				if !r.ValidUntil.Equal(f.now.Add(30 * 24 * time.Hour)) {
					t.Errorf("ValidUntil = %v", r.ValidUntil)
				}
			},
		},
		{
			name: "rsa-pss layout owner",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.ownerRSA), f.goodLinks(t, signClassic), k.ownerRSA)
			},
		},
		{
			name: "DSSE layout and DSSE links",
			in: func(t *testing.T) Input {
				return f.input(signDSSE(t, f.layout(), k.owner), f.goodLinks(t, signDSSE))
			},
		},
		{
			name: "DSSE layout signed with rsa-pss, classic links",
			in: func(t *testing.T) Input {
				return f.input(signDSSE(t, f.layout(), k.ownerRSA), f.goodLinks(t, signClassic), k.ownerRSA)
			},
		},
		{
			name: "layout signed by two keys, both pinned",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.owner, k.ownerRSA), f.goodLinks(t, signClassic), k.owner, k.ownerRSA)
			},
		},
		{
			name: "links given twice are counted once",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				return f.input(signClassic(t, f.layout(), k.owner), append(links, links...))
			},
		},
		{
			name: "missing link",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)[1:] // no build link
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `step "build": no link found (needs 1 signed by its functionaries [` + short(k.build.pub.KeyID) + `])`,
		},
		{
			name: "link signed by the wrong functionary",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				links[0] = signClassic(t, f.buildLink(), k.pkgA) // a packager signs the build
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `step "build" needs 1 link(s) signed by distinct functionaries [` + short(k.build.pub.KeyID) +
				`]; none valid; rejected: link by ` + short(k.pkgA.pub.KeyID) + `: key is not a functionary of step "build"`,
		},
		{
			name: "threshold not met",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic)[:2])
			},
			want: `step "package" needs 2 link(s) signed by distinct functionaries`,
		},
		{
			name: "threshold not met by one key listed under two key ids",
			in: func(t *testing.T) Input {
				// The same ecdsa key under a second id (other keyid_hash_algorithms).
				alias := k.pkgA
				alias.pub.KeyIDHashAlgorithms = []string{"sha256"}
				id, err := computeKeyID(alias.pub)
				if err != nil {
					t.Fatal(err)
				}
				alias.pub.KeyID, alias.priv.KeyID = id, id
				l := f.layout()
				l.Keys[id] = alias.pub
				l.Steps[1].PubKeys = []string{k.pkgA.pub.KeyID, id}
				links := f.goodLinks(t, signClassic)
				links[2] = signClassic(t, f.packageLink(f.manifest), alias)
				return f.input(signClassic(t, l, k.owner), links)
			},
			want: "same key as",
		},
		{
			name: "two different links by one functionary for one step",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				links[2] = signDSSE(t, f.packageLink(f.manifest), k.pkgA) // same key, other envelope
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `two different links signed by key ` + short(k.pkgA.pub.KeyID),
		},
		{
			name: "tampered link",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				links[0] = []byte(strings.Replace(string(links[0]), sha256Hex(f.app), sha256Hex([]byte("evil")), 1))
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `link by ` + short(k.build.pub.KeyID) + `: signature does not verify`,
		},
		{
			name: "expired layout",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				in.Now = f.now.Add(31 * 24 * time.Hour)
				return in
			},
			want: "layout expired at 2026-12-27T12:00:00Z (verification time 2026-12-28T12:00:00Z)",
		},
		{
			name: "layout signed by an unpinned key",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.rogue), f.goodLinks(t, signClassic))
			},
			want: "layout is not signed by layout key " + short(k.owner.pub.KeyID) +
				" (layout key #1); it carries signatures from [" + short(k.rogue.pub.KeyID) + "]",
		},
		{
			name: "every pinned layout key must sign",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic), k.owner, k.ownerRSA)
			},
			want: "layout is not signed by layout key " + short(k.ownerRSA.pub.KeyID),
		},
		{
			name: "product hash does not match the pulled subject",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				in.SubjectSHA256 = sha256Hex(other)
				return in
			},
			want: `step "package" produced manifest.json with digest sha256:` + sha256Hex(f.manifest) +
				`, but the pulled manifest.json has digest sha256:` + sha256Hex(other),
		},
		{
			name: "links for another subject",
			in: func(t *testing.T) Input {
				links := [][]byte{
					signClassic(t, f.buildLink(), k.build),
					signClassic(t, f.packageLink(other), k.pkgA),
					signClassic(t, f.packageLink(other), k.pkgB),
				}
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `produced manifest.json with digest sha256:` + sha256Hex(other) + `, but the pulled manifest.json has digest sha256:` + sha256Hex(f.manifest),
		},
		{
			name: "functionaries of one step disagree",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				links[2] = signClassic(t, f.packageLink(other), k.pkgB)
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: "links of one step disagree on their artifacts",
		},
		{
			name: "step artifact rule violated",
			in: func(t *testing.T) Input {
				l := link("build", map[string][]byte{"src.txt": f.src}, map[string][]byte{"app.bin": f.app, "backdoor.sh": []byte("x")})
				links := f.goodLinks(t, signClassic)
				links[0] = signClassic(t, l, k.build)
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: `step "build": artifact verification failed for Step 'build', products [backdoor.sh] disallowed by rule [DISALLOW *]`,
		},
		{
			name: "sublayout fails closed",
			in: func(t *testing.T) Input {
				links := f.goodLinks(t, signClassic)
				links[0] = signClassic(t, f.layout(), k.build) // a "link" that is a layout
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: "link #1 (signed by [" + short(k.build.pub.KeyID) + "]) is a sublayout: trustproxy does not verify sublayouts",
		},
		{
			name: "subject not bound by any step or inspection",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps = l.Steps[:1] // only build; nothing produces manifest.json
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic)[:1])
			},
			want: "layout does not bind manifest.json: no step lists it among its products",
		},
		{
			name: "inspection MATCH binds a subject a step produced under another path",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[1].ExpectedProducts = [][]string{{"CREATE", "out/manifest.json"}, {"DISALLOW", "*"}}
				l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"true"},
					SupplyChainItem: in_toto.SupplyChainItem{Name: "verify-manifest",
						ExpectedMaterials: [][]string{{"MATCH", "manifest.json", "WITH", "PRODUCTS", "IN", "out", "FROM", "package"}, {"DISALLOW", "*"}},
						ExpectedProducts:  [][]string{{"ALLOW", "*"}}}}}
				pkg := link("package", map[string][]byte{"app.bin": f.app}, map[string][]byte{"out/manifest.json": f.manifest})
				links := [][]byte{signClassic(t, f.buildLink(), k.build), signClassic(t, pkg, k.pkgA), signClassic(t, pkg, k.pkgB)}
				return f.input(signClassic(t, l, k.owner), links)
			},
			check: func(t *testing.T, r Result) {
				if !strings.HasPrefix(r.BoundBy, `inspection "verify-manifest" (MATCH manifest.json`) {
					t.Errorf("BoundBy = %q", r.BoundBy)
				}
				if !slices.Equal(r.Inspections, []string{"verify-manifest"}) {
					t.Errorf("Inspections = %v", r.Inspections)
				}
			},
		},
		{
			name: "inspection that only ALLOWs the subject does not bind it",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[1].ExpectedProducts = [][]string{{"CREATE", "out/manifest.json"}, {"DISALLOW", "*"}}
				l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"true"},
					SupplyChainItem: in_toto.SupplyChainItem{Name: "look",
						ExpectedMaterials: [][]string{{"ALLOW", "*"}, {"MATCH", "manifest.json", "WITH", "PRODUCTS", "IN", "out", "FROM", "package"}},
						ExpectedProducts:  [][]string{}}}}
				pkg := link("package", map[string][]byte{"app.bin": f.app}, map[string][]byte{"out/manifest.json": f.manifest})
				links := [][]byte{signClassic(t, f.buildLink(), k.build), signClassic(t, pkg, k.pkgA), signClassic(t, pkg, k.pkgB)}
				return f.input(signClassic(t, l, k.owner), links)
			},
			want: "layout does not bind manifest.json",
		},
		{
			name: "inspection whose rules pass on the subject alone is a no-op",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Inspect = []in_toto.Inspection{{Type: "inspection", Run: []string{"false"},
					SupplyChainItem: in_toto.SupplyChainItem{Name: "check",
						ExpectedMaterials: [][]string{{"MATCH", "manifest.json", "WITH", "PRODUCTS", "FROM", "package"}, {"DISALLOW", "*"}},
						ExpectedProducts:  [][]string{{"MATCH", "*", "WITH", "MATERIALS", "FROM", "check"}, {"DISALLOW", "*"}}}}}
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
			},
			check: func(t *testing.T, r Result) {
				if r.BoundBy != `step "package"` || !slices.Equal(r.Inspections, []string{"check"}) {
					t.Errorf("BoundBy = %q, Inspections = %v", r.BoundBy, r.Inspections)
				}
			},
		},
		{
			name: "parameters substituted",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[1].ExpectedProducts = [][]string{{"CREATE", "{SUBJECT}"}, {"DISALLOW", "*"}}
				in := f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
				in.Parameters = map[string]string{"SUBJECT": "manifest.json"}
				return in
			},
		},
		{
			name: "parameter used but not supplied",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[1].ExpectedProducts = [][]string{{"CREATE", "{SUBJECT}"}, {"DISALLOW", "*"}}
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
			},
			want: `step "package" rule [CREATE {SUBJECT}] uses parameter SUBJECT, which the policy does not supply`,
		},
		{
			name: "malformed pattern",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[0].ExpectedMaterials = [][]string{{"ALLOW", "src[.txt"}}
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
			},
			want: `layout is malformed: step "build" rule [ALLOW src[.txt]: malformed pattern "src[.txt"`,
		},
		{
			name: "threshold 0 is refused",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Steps[0].Threshold = 0
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic)[1:])
			},
			want: `layout is malformed: step "build" has threshold 0, want at least 1`,
		},
		{
			name: "unknown field in a signed layout",
			in: func(t *testing.T) Input {
				b := signClassic(t, f.layout(), k.owner)
				b = []byte(strings.Replace(string(b), `"_type":"layout"`, `"_type":"layout","extra":1`, 1))
				return f.input(b, f.goodLinks(t, signClassic))
			},
			want: `layout: decode layout: json: unknown field "extra"`,
		},
		{
			name: "layout file that is a link",
			in: func(t *testing.T) Input {
				return f.input(signClassic(t, f.buildLink(), k.owner), f.goodLinks(t, signClassic))
			},
			want: "the root layout file holds a link, not a layout",
		},
		{
			name: "DSSE envelope with a foreign payload type",
			in: func(t *testing.T) Input {
				b := signDSSE(t, f.layout(), k.owner)
				b = []byte(strings.Replace(string(b), in_toto.PayloadType, "application/json", 1))
				return f.input(b, f.goodLinks(t, signClassic))
			},
			want: `DSSE payloadType "application/json"`,
		},
		{
			name: "oversized layout",
			in: func(t *testing.T) Input {
				l := f.layout()
				l.Readme = strings.Repeat("x", int(DefaultLimits().MaxMetadataBytes))
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
			},
			want: "over a limit: the layout is ",
		},
		{
			name: "more steps than the default limit is a limit, not a malformed layout",
			in: func(t *testing.T) Input {
				l := f.layout()
				for i := len(l.Steps); i < 200; i++ {
					s := l.Steps[0]
					s.Name = fmt.Sprintf("extra-%d", i)
					l.Steps = append(l.Steps, s)
				}
				return f.input(signClassic(t, l, k.owner), f.goodLinks(t, signClassic))
			},
			want: "over a limit: the layout has 200 steps, the limit is 64 steps (raise it with the rule's inToto.limits.maxSteps)",
		},
		{
			name: "a rule's own step limit",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				in.Limits = Limits{MaxSteps: 1}
				return in
			},
			want: "the layout has 2 steps, the limit is 1 steps",
		},
		{
			name: "too many links",
			in: func(t *testing.T) Input {
				links := make([][]byte, DefaultLimits().MaxLinks+1)
				for i := range links {
					links[i] = []byte("{}")
				}
				return f.input(signClassic(t, f.layout(), k.owner), links)
			},
			want: "over a limit: the artifact lists 257 links, the limit is 256 links (raise it with the rule's inToto.limits.maxLinks)",
		},
		{
			name: "private key given as layout key",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				b, err := json.Marshal(k.owner.priv)
				if err != nil {
					t.Fatal(err)
				}
				in.LayoutKeys = [][]byte{b}
				return in
			},
			want: "holds a private key: give the .pub file",
		},
		{
			name: "subject digest must be lowercase hex",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				in.SubjectSHA256 = "sha256:" + in.SubjectSHA256
				return in
			},
			want: "must be 64 lowercase hex characters",
		},
		{
			name: "no verification time",
			in: func(t *testing.T) Input {
				in := f.input(signClassic(t, f.layout(), k.owner), f.goodLinks(t, signClassic))
				in.Now = time.Time{}
				return in
			},
			want: "no verification time given",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(context.Background(), tc.in(t))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tc.check != nil {
					tc.check(t, res)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify passed, want denial containing %q", tc.want)
			}
			t.Logf("denied: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
			if res.LayoutSHA256 != "" || res.Steps != nil {
				t.Errorf("denial returned a non-empty result %+v", res)
			}
		})
	}
}

// An inspection that would create a marker file is denied, and the marker
// never appears: nothing was executed.
func TestVerifyNeverRunsInspections(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "inspection-ran")
	l := f.layout()
	l.Inspect = []in_toto.Inspection{{
		Type: "inspection", Run: []string{"touch", marker},
		SupplyChainItem: in_toto.SupplyChainItem{Name: "make-marker",
			ExpectedMaterials: [][]string{{"ALLOW", "*"}},
			ExpectedProducts:  [][]string{{"REQUIRE", "inspection-ran"}, {"CREATE", "inspection-ran"}, {"ALLOW", "manifest.json"}, {"DISALLOW", "*"}},
		},
	}}
	for _, sign := range []struct {
		name string
		fn   func(testing.TB, any, ...testKey) []byte
	}{{"classic", signClassic}, {"dsse", signDSSE}} {
		t.Run(sign.name, func(t *testing.T) {
			cwdBefore, err := os.ReadDir(".")
			if err != nil {
				t.Fatal(err)
			}
			_, err = Verify(context.Background(), f.input(sign.fn(t, l, f.k.owner), f.goodLinks(t, sign.fn)))
			if err == nil {
				t.Fatal("Verify passed a layout whose inspection needs a command to run")
			}
			for _, want := range []string{
				`inspection "make-marker" (run "touch ` + marker + `") cannot be evaluated without running it`,
				"trustproxy never runs inspection commands",
				"holds only manifest.json, sha256:" + sha256Hex(f.manifest) + ")",
				`expected_products rule "REQUIRE inspection-ran": it refers to inspection-ran, not to the subject manifest.json`,
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\nlacks %q", err, want)
				}
			}
			if _, statErr := os.Stat(marker); !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("marker file exists (stat: %v): an inspection command ran", statErr)
			}
			// InTotoVerify would also have written make-marker.link into the
			// working directory.
			cwdAfter, err := os.ReadDir(".")
			if err != nil {
				t.Fatal(err)
			}
			if len(cwdAfter) != len(cwdBefore) {
				t.Fatalf("working directory changed: %d entries before, %d after", len(cwdBefore), len(cwdAfter))
			}
		})
	}
}

// Links may also be signed by functionaries identified by certificates under
// a root CA the layout lists, as the step's cert_constraints allow.
func TestVerifyCertificateFunctionary(t *testing.T) {
	f := newFixture(t)
	const uri = "spiffe://example.org/packager"
	notAfter := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	cf := newCertFunctionary(t, uri, notAfter)
	layout := func(uris []string) in_toto.Layout {
		l := f.layout()
		l.RootCas = map[string]in_toto.Key{cf.ca.KeyID: cf.ca}
		l.Steps[1].CertificateConstraints = []in_toto.CertificateConstraint{{
			CommonName: "*", Organizations: []string{"*"}, Roots: []string{"*"}, URIs: uris,
		}}
		return l
	}
	links := [][]byte{
		signClassic(t, f.buildLink(), f.k.build),
		signClassic(t, f.packageLink(f.manifest), f.k.pkgA),
		signClassic(t, f.packageLink(f.manifest), cf.leaf),
	}

	res, err := Verify(context.Background(), f.input(signClassic(t, layout([]string{uri}), f.k.owner), links))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !slices.Contains(res.Functionaries, cf.leaf.pub.KeyID) {
		t.Errorf("Functionaries %v lack the certificate key %s", res.Functionaries, cf.leaf.pub.KeyID)
	}
	if !res.ValidUntil.Equal(notAfter) {
		t.Errorf("ValidUntil = %v, want the certificate's NotAfter %v", res.ValidUntil, notAfter)
	}

	_, err = Verify(context.Background(), f.input(signClassic(t, layout([]string{"spiffe://example.org/other"}), f.k.owner), links))
	if err == nil || !strings.Contains(err.Error(), "link by "+short(cf.leaf.pub.KeyID)+": certificate does not meet the step's constraints") {
		t.Fatalf("Verify with unmet constraint: %v", err)
	}
}

func TestVerifyContextCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Verify(ctx, f.input(signClassic(t, f.layout(), f.k.owner), f.goodLinks(t, signClassic)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with a canceled context: %v", err)
	}
}

// in-toto-golang prints warnings to stdout (command misalignment, bad
// patterns); a proxy's stdout is its log stream. The fixture's links report
// commands that differ from the layout's expected commands, which
// VerifyStepCommandAlignment would print about.
func TestVerifyPrintsNothing(t *testing.T) {
	f := newFixture(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()

	l := f.layout()
	_, okErr := Verify(context.Background(), f.input(signClassic(t, l, f.k.owner), f.goodLinks(t, signClassic)))
	l.Steps[0].ExpectedMaterials = [][]string{{"ALLOW", "["}}
	_, badErr := Verify(context.Background(), f.input(signClassic(t, l, f.k.owner), f.goodLinks(t, signClassic)))

	os.Stdout = stdout
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	printed, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if okErr != nil || badErr == nil {
		t.Fatalf("Verify: good layout %v, malformed layout %v", okErr, badErr)
	}
	if len(printed) != 0 {
		t.Fatalf("Verify printed to stdout: %q", printed)
	}
}
