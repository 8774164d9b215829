package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trustproxy/trustproxy/policy"
)

const (
	sbomType = "application/vnd.example.sbom.v1+json"
	sigType  = "application/vnd.example.signature.v1+json"
)

// referrersFixture: a signed image with two artifacts attached upstream (by
// go-containerregistry, which keeps distribution's referrers tag schema
// index), a runnable image pushed as a third "referrer", and an artifact
// attached to an unsigned image.
type referrersFixture struct {
	signed, unsigned    v1.Descriptor
	sbom, sig, runnable v1.Hash
	unsignedSBOM        v1.Hash
}

func newReferrersFixture(t *testing.T, te *trustEnv) referrersFixture {
	t.Helper()
	var f referrersFixture
	te.up.PushRandomImage(t, "acme/app:1.0", 1024, 1, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	f.signed, f.unsigned = te.up.Descriptor(t, "acme/app:1.0"), te.up.Descriptor(t, "acme/app:unsigned")
	f.sbom = te.up.PushArtifact(t, "acme/app", f.signed, sbomType, `{"sbom":1}`)
	f.sig = te.up.PushArtifact(t, "acme/app", f.signed, sigType, `{"sig":1}`)
	evil, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	f.runnable = te.up.PushSubjectImage(t, "acme/app", f.signed, evil)
	f.unsignedSBOM = te.up.PushArtifact(t, "acme/app", f.unsigned, sbomType, `{"sbom":2}`)
	return f
}

func (te *trustEnv) proxyRef(t *testing.T, repoAndRef string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(te.host+"/"+upName+"/"+repoAndRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func referrerDigestsOf(t *testing.T, idx v1.ImageIndex) []string {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range m.Manifests {
		out = append(out, d.Digest.String())
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string { sort.Strings(s); return s }

// Referrers of an approved subject come back through trustproxy as an OCI
// index, whatever the upstream supports (distribution has no referrers API:
// trustproxy reads the tag schema), with only real attachments listed;
// they and their blobs can be pulled, and the access log says what they
// are attachments of.
func TestReferrersOfApprovedSubject(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	te := newTrustEnvWith(t, envOpts{log: zap.New(core)})
	f := newReferrersFixture(t, te)
	subject := te.proxyRef(t, "acme/app@"+f.signed.Digest.String()).(name.Digest)

	idx, err := remote.Referrers(subject)
	if err != nil {
		t.Fatalf("referrers through trustproxy: %v", err)
	}
	if got, want := referrerDigestsOf(t, idx), sorted(f.sbom.String(), f.sig.String()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("referrers %v, want %v (the runnable image %s must not be listed)", got, want, f.runnable)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		if d.ArtifactType != sbomType && d.ArtifactType != sigType || d.MediaType != types.OCIManifestSchema1 || d.Size <= 0 {
			t.Errorf("descriptor %+v", d)
		}
	}

	filtered, err := remote.Referrers(subject, remote.WithFilter("artifactType", sbomType))
	if err != nil {
		t.Fatal(err)
	}
	if got := referrerDigestsOf(t, filtered); len(got) != 1 || got[0] != f.sbom.String() {
		t.Fatalf("filtered referrers %v, want [%s]", got, f.sbom)
	}
	resp := te.get(t, "GET", "/v2/acme/app/referrers/"+f.signed.Digest.String()+"?artifactType="+url.QueryEscape(sbomType), nil)
	var raw ocispec.Index
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex ||
		resp.Header.Get("OCI-Filters-Applied") != "artifactType" || len(raw.Manifests) != 1 || raw.SchemaVersion != 2 {
		t.Fatalf("filtered answer: %d %v %+v", resp.StatusCode, resp.Header, raw)
	}

	listed := 0
	for _, l := range logs.FilterMessage("request").All() {
		if strings.Contains(l.ContextMap()["path"].(string), "/referrers/") && l.ContextMap()["decision"] == "referrers-of:"+f.signed.Digest.String() {
			listed++
		}
	}
	if listed == 0 {
		t.Errorf("no access line says referrers-of:%s", f.signed.Digest)
	}
	logs.TakeAll()
	img, err := remote.Image(te.proxyRef(t, "acme/app@"+f.sbom.String()))
	if err != nil {
		t.Fatalf("pull attachment: %v", err)
	}
	assertLayersReadable(t, img)
	if _, err := img.RawConfigFile(); err != nil {
		t.Fatalf("attachment config: %v", err)
	}
	n := 0
	for _, l := range logs.FilterMessage("request").All() {
		if l.ContextMap()["path"] == "/v2/" {
			continue
		}
		n++
		if dec := l.ContextMap()["decision"]; dec != "attachment-of:"+f.signed.Digest.String() {
			t.Errorf("access line of %v: decision %v", l.ContextMap()["path"], dec)
		}
	}
	if n < 3 { // manifest, config, layer
		t.Errorf("%d access lines for the attachment's manifest and blobs", n)
	}

	// The runnable "referrer" is no attachment: not served, even by digest.
	if code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/"+f.runnable.String(), nil)); code != "DENIED" {
		t.Fatalf("runnable referrer by digest: %s %s", code, msg)
	}

	// Clients that use the tag schema themselves read the same index.
	resp = te.get(t, "GET", "/v2/acme/app/manifests/sha256-"+f.signed.Digest.Hex, map[string]string{"Accept": ocispec.MediaTypeImageIndex})
	var tagged ocispec.Index
	if err := json.NewDecoder(resp.Body).Decode(&tagged); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex || len(tagged.Manifests) != 2 {
		t.Fatalf("tag schema index: %d %+v", resp.StatusCode, tagged)
	}
}

// A subject trustproxy would not serve has no referrers: the request is
// denied (403 DENIED, naming the subject's denial), the tag schema's tag
// too, and the unsigned subject's artifact cannot be pulled.
func TestReferrersOfUnapprovedSubjectDenied(t *testing.T) {
	te := newTrustEnv(t)
	f := newReferrersFixture(t, te)
	for _, p := range []string{
		"/v2/acme/app/referrers/" + f.unsigned.Digest.String(),
		"/v2/acme/app/manifests/sha256-" + f.unsigned.Digest.Hex,
		"/v2/acme/app/manifests/" + f.unsignedSBOM.String(),
		"/v2/acme/app/referrers/" + f.signed.Digest.String() + "x",
	} {
		resp := te.get(t, "GET", p, nil)
		status := resp.StatusCode
		code, msg := ociErr(t, resp)
		switch {
		case strings.HasSuffix(p, "x"):
			if status != 400 || code != "DIGEST_INVALID" {
				t.Errorf("%s: %d %s %s", p, status, code, msg)
			}
		case status != 403 || code != "DENIED":
			t.Errorf("%s: %d %s %s", p, status, code, msg)
		case strings.Contains(p, "referrers") && !strings.Contains(msg, "attachments of up.test/acme/app@"+f.unsigned.Digest.String()+" are served only for a subject trustproxy serves") ||
			strings.Contains(p, "referrers") && !strings.Contains(msg, "is not the hash of any target"):
			t.Errorf("%s: message %q", p, msg)
		}
	}
	_, err := remote.Referrers(te.proxyRef(t, "acme/app@"+f.unsigned.Digest.String()).(name.Digest))
	if err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("ggcr referrers of an unsigned subject: %v", err)
	}
}

// Removing the subject's target revokes its attachments with it at the
// next refresh: listing, manifests and blobs, even though they are cached.
func TestReferrersRevokedWithSubject(t *testing.T) {
	te := newTrustEnv(t)
	f := newReferrersFixture(t, te)
	// As for a child of an index, an attachment is served by digest once
	// its subject's referrers were listed: trustproxy asks the upstream
	// nothing about a digest no approval covers.
	sigPath := "/v2/acme/app/manifests/" + f.sig.String()
	if code, msg := ociErr(t, te.get(t, "GET", sigPath, nil)); code != "DENIED" {
		t.Fatalf("attachment before its subject's referrers were listed: %s %s", code, msg)
	}
	if _, err := remote.Referrers(te.proxyRef(t, "acme/app@"+f.signed.Digest.String()).(name.Digest)); err != nil {
		t.Fatal(err)
	}
	ld := pullAttachment(t, te.proxyRef(t, "acme/app@"+f.sig.String()))
	te.revokeApp(t)
	for _, p := range []string{
		"/v2/acme/app/referrers/" + f.signed.Digest.String(),
		sigPath,
		"/v2/acme/app/blobs/" + ld.String(),
	} {
		if code, msg := ociErr(t, te.get(t, "GET", p, nil)); code != "DENIED" {
			t.Errorf("%s after revocation: %s %s", p, code, msg)
		}
	}
}

// An upstream with the referrers API is asked through it (no tag schema
// request); its listing is a hint, every entry is fetched and checked.
func TestReferrersFromUpstreamAPI(t *testing.T) {
	te := newTrustEnv(t)
	f := newReferrersFixture(t, te)
	var tagAsked, apiAsked int
	te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		switch {
		case strings.Contains(r.URL.Path, "/referrers/"):
			apiAsked++
			// The listing an upstream with the API gives: every manifest
			// naming the subject, the runnable one included.
			idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
			idx.SchemaVersion = 2
			// Two pages: the second is named by Link, as the spec's
			// pagination does.
			page := []v1.Hash{f.sbom, f.runnable}
			if r.URL.Query().Get("last") != "" {
				page = []v1.Hash{f.sig, f.unsignedSBOM}
			} else {
				w.Header().Set("Link", `<`+r.URL.Path+`?n=2&last=x>; rel="next"`)
			}
			for _, d := range page {
				desc, err := remote.Head(te.up.Ref(t, "acme/app@"+d.String()))
				if err != nil {
					t.Error(err)
					continue
				}
				idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: digestOf(d), Size: desc.Size, ArtifactType: "forged/type"})
			}
			w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
			_ = json.NewEncoder(w).Encode(idx)
		case strings.Contains(r.URL.Path, "/manifests/sha256-"):
			tagAsked++
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
	idx, err := remote.Referrers(te.proxyRef(t, "acme/app@"+f.signed.Digest.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := referrerDigestsOf(t, idx), sorted(f.sbom.String(), f.sig.String()); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("referrers %v, want %v", got, want)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		if d.ArtifactType == "forged/type" {
			t.Fatalf("descriptor taken from the upstream's listing: %+v", d)
		}
	}
	if apiAsked != 2 || tagAsked != 0 {
		t.Fatalf("upstream asked: API %d, tag schema %d", apiAsked, tagAsked)
	}
}

func TestNextPage(t *testing.T) {
	const want = "/v2/acme/app/referrers/sha256:ab"
	for _, tc := range []struct{ link, out string }{
		{"", ""},
		{`</v2/acme/app/referrers/sha256:ab?n=2&last=x>; rel="next"`, "referrers/sha256:ab?n=2&last=x"},
		{`<https://other.example/v2/acme/app/referrers/sha256:ab?n=2>; rel="next"`, "referrers/sha256:ab?n=2"},
		{`</v2/evil/referrers/sha256:ab?n=2>; rel="next"`, ""},
		{`</v2/acme/app/referrers/sha256:ab?n=2>; rel="prev"`, ""},
	} {
		if got := nextPage(tc.link, want, "referrers/sha256:ab"); got != tc.out {
			t.Errorf("nextPage(%q) = %q, want %q", tc.link, got, tc.out)
		}
	}
}

func digestOf(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

// cosign's own tags (sha256-<hex>.sig, .att, .sbom) name their subject in
// the tag: the upstream's manifest under it is served, with its blobs, as
// an attachment of an approved subject; a runnable image under such a tag
// is refused, and so is the tag of an unapproved subject.
func TestCosignTagsServedAsAttachments(t *testing.T) {
	te := newTrustEnv(t)
	f := newReferrersFixture(t, te)
	signed := v1.Hash{Algorithm: "sha256", Hex: f.signed.Digest.Hex}
	sig := te.up.PushCosignSignature(t, "acme/app", signed)
	te.up.PushCosignSignature(t, "acme/app", v1.Hash{Algorithm: "sha256", Hex: f.unsigned.Digest.Hex})
	evil, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	te.up.PushImage(t, "acme/app:sha256-"+f.signed.Digest.Hex+".att", evil)

	img, err := remote.Image(te.proxyRef(t, "acme/app:sha256-"+f.signed.Digest.Hex+".sig"))
	if err != nil {
		t.Fatalf("cosign signature tag through trustproxy: %v", err)
	}
	if d, _ := img.Digest(); d != sig {
		t.Fatalf("served %s, want %s", d, sig)
	}
	assertLayersReadable(t, img)
	for _, p := range []string{
		"/v2/acme/app/manifests/sha256-" + f.signed.Digest.Hex + ".att",
		"/v2/acme/app/manifests/sha256-" + f.unsigned.Digest.Hex + ".sig",
	} {
		if code, msg := ociErr(t, te.get(t, "GET", p, nil)); code != "DENIED" {
			t.Errorf("%s: %s %s", p, code, msg)
		}
	}
	resp := te.get(t, "GET", "/v2/acme/app/manifests/sha256-"+f.signed.Digest.Hex+".sbom", nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing cosign tag: %d", resp.StatusCode)
	}
}

// What an upstream answers to the referrers API decides how trustproxy
// asks: a 404, 400, 406 or a 200 that is no OCI index means "no API" (the
// tag schema is read); a failure is passed on, never read as "none". A
// subject without referrers gets an empty index, and its tag schema tag
// a 404.
func TestReferrersUpstreamAnswers(t *testing.T) {
	te := newTrustEnv(t)
	f := newReferrersFixture(t, te)
	te.up.PushRandomImage(t, "acme/app:2.0", 512, 1, types.OCIManifestSchema1)
	bare := te.sign(t, "acme/app:2.0", nil)
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		want        int // referrers listed; -1: the request fails with wantStatus
		wantStatus  int
	}{
		{"404", 404, "application/json", 2, 200},
		{"400", 400, "application/json", 2, 200},
		{"406", 406, "application/json", 2, 200},
		{"200 html", 200, "text/html; charset=utf-8", 2, 200},
		{"500", 500, "text/plain", -1, 502},
		{"429", 429, "text/plain", -1, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/referrers/") {
					w.Header().Set("Content-Type", tc.contentType)
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte("<html>login</html>"))
					return
				}
				next.ServeHTTP(w, r)
			})
			defer te.up.SetMiddleware(nil)
			resp := te.get(t, "GET", "/v2/acme/app/referrers/"+f.signed.Digest.String(), nil)
			var ix ocispec.Index
			_ = json.NewDecoder(resp.Body).Decode(&ix)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || tc.want >= 0 && len(ix.Manifests) != tc.want {
				t.Fatalf("status %d with %d referrers, want %d with %d", resp.StatusCode, len(ix.Manifests), tc.wantStatus, tc.want)
			}
		})
	}
	resp := te.get(t, "GET", "/v2/acme/app/referrers/"+bare.Digest, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"manifests":[]`) {
		t.Fatalf("subject without referrers: %d %s", resp.StatusCode, b)
	}
	resp = te.get(t, "GET", "/v2/acme/app/manifests/sha256-"+strings.TrimPrefix(bare.Digest, "sha256:"), nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("tag schema tag of a subject without referrers: %d", resp.StatusCode)
	}
}

// A rule's attachments setting: artifactTypes lists the only types served
// (the others are not listed and are denied by digest); disabled serves
// none and asks the upstream nothing.
func TestReferrersRuleAttachmentsSetting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a      policy.Attachments
		listed []string // "sbom", "sig"
	}{
		{"default", policy.Attachments{}, []string{"sbom", "sig"}},
		{"sbom only", policy.Attachments{ArtifactTypes: []string{sbomType}}, []string{"sbom"}},
		{"disabled", policy.Attachments{Disabled: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := trustRules()
			rules[0].Attachments = tc.a
			te := newTrustEnvWith(t, envOpts{rules: rules})
			f := newReferrersFixture(t, te)
			var asked int
			te.up.SetMiddleware(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if strings.Contains(r.URL.Path, "/referrers/") || strings.Contains(r.URL.Path, "/manifests/sha256-") {
					asked++
				}
				next.ServeHTTP(w, r)
			})
			idx, err := remote.Referrers(te.proxyRef(t, "acme/app@"+f.signed.Digest.String()).(name.Digest))
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]string{"sbom": f.sbom.String(), "sig": f.sig.String()}
			var want []string
			for _, n := range tc.listed {
				want = append(want, byName[n])
			}
			sort.Strings(want)
			if got := referrerDigestsOf(t, idx); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("listed %v, want %v", got, want)
			}
			if tc.a.Disabled && asked != 0 {
				t.Fatalf("disabled: the upstream was asked %d times", asked)
			}
			if !tc.a.Allows(sigType) {
				code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/app/manifests/"+f.sig.String(), nil))
				if code != "DENIED" {
					t.Fatalf("excluded type by digest: %s %s", code, msg)
				}
			}
			// cosign's tag: its type is its config's media type.
			te.up.PushCosignSignature(t, "acme/app", v1.Hash{Algorithm: "sha256", Hex: f.signed.Digest.Hex})
			resp := te.get(t, "GET", "/v2/acme/app/manifests/sha256-"+f.signed.Digest.Hex+".sig", nil)
			status := resp.StatusCode
			code, msg := ociErr(t, resp)
			if tc.a.Allows(string(types.OCIConfigJSON)) != (status == 200) ||
				status != 200 && (code != "DENIED" || !strings.Contains(msg, "attachments setting")) {
				t.Fatalf("cosign tag: %d %s %s", status, code, msg)
			}
		})
	}
}

// An attachment grant is recorded in the storage like any approval: a
// replica on the same storage serves a listed attachment and its blobs by
// digest without listing the referrers itself, and denies them once the
// subject is revoked.
func TestAttachmentApprovalsReachReplicas(t *testing.T) {
	drv := filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
	te := newTrustEnvWith(t, envOpts{cache: newSharedCache(t, drv)})
	f := newReferrersFixture(t, te)
	if _, err := remote.Referrers(te.proxyRef(t, "acme/app@"+f.signed.Digest.String()).(name.Digest)); err != nil {
		t.Fatal(err)
	}
	replica, replicaTrust := te.replica(t, drv)
	ref, err := name.NewDigest(replica.host+"/"+upName+"/acme/app@"+f.sbom.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ld := pullAttachment(t, ref)
	te.revokeApp(t)
	if err := replicaTrust.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/v2/acme/app/manifests/" + f.sbom.String(), "/v2/acme/app/blobs/" + ld.String()} {
		if code, msg := ociErr(t, replica.get(t, "GET", p, nil)); code != "DENIED" {
			t.Errorf("replica after revocation: %s: %s %s", p, code, msg)
		}
	}
}

// pullAttachment pulls ref through trustproxy, reads its layers and returns
// the first one's digest.
func pullAttachment(t *testing.T, ref name.Reference) v1.Hash {
	t.Helper()
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull attachment %s: %v", ref, err)
	}
	assertLayersReadable(t, img)
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	return ld
}

// revokeApp removes acme/app:1.0's target (the fixture's signed subject)
// and refreshes the proxy's trust data.
func (te *trustEnv) revokeApp(t *testing.T) {
	t.Helper()
	if _, err := te.repo.RemoveTarget("targets", upName+"/acme/app:1.0"); err != nil {
		t.Fatal(err)
	}
	te.publish(t)
}
