package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

const (
	attSBOM = "application/vnd.example.sbom.v1+json"
	attSig  = "application/vnd.example.signature.v1+json"
)

// Signatures and SBOMs of an approved index and of its platform manifests
// cross the gap: export finds them through the proxy's referrers API (the
// upstream, distribution, keeps only the tag schema) and cosign's tag,
// marks them in trustproxy-mirror.json and index.json (skopeo still reads
// the images; oras reads the referrers from the layout); import verifies
// and loads them, and the offline proxy answers the referrers API and the
// cosign tag from what was imported.
func TestMirrorAttachments(t *testing.T) {
	m := newMirrorSides(t)
	ix := m.up.PushRandomIndex(t, "acme/app:1.0", 2, types.OCIImageIndex)
	m.sign(t, "acme/app:1.0")
	indexDigest, _ := ix.Digest()
	im, _ := ix.IndexManifest()
	platform := im.Manifests[0]
	sbom := m.up.PushArtifact(t, "acme/app", m.up.Descriptor(t, "acme/app@"+indexDigest.String()), attSBOM, `{"sbom":"index"}`)
	sig := m.up.PushArtifact(t, "acme/app", platform, attSig, `{"sig":"platform"}`)
	cosignSig := m.up.PushCosignSignature(t, "acme/app", indexDigest)

	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")

	var mix struct {
		Attachments []struct {
			Repository, Subject, Digest, ArtifactType, Tag string
		} `json:"attachments"`
	}
	b, err := os.ReadFile(filepath.Join(exp, "trustproxy-mirror.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &mix); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		sbom.String():      indexDigest.String() + " " + attSBOM + " ",
		sig.String():       platform.Digest.String() + " " + attSig + " ",
		cosignSig.String(): indexDigest.String() + " " + string(types.OCIConfigJSON) + " sha256-" + indexDigest.Hex + ".sig",
	}
	if len(mix.Attachments) != len(want) {
		t.Fatalf("attachments in trustproxy-mirror.json: %+v", mix.Attachments)
	}
	for _, a := range mix.Attachments {
		if a.Repository != "up/acme/app" || want[a.Digest] != a.Subject+" "+a.ArtifactType+" "+a.Tag {
			t.Errorf("attachment %+v, want %q", a, want[a.Digest])
		}
	}
	var oix struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	b, _ = os.ReadFile(filepath.Join(exp, "index.json"))
	if err := json.Unmarshal(b, &oix); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, d := range oix.Manifests {
		if s := d.Annotations["io.trustproxy.attachment.subject"]; s != "" {
			marked++
			if want[d.Digest] == "" || !strings.HasPrefix(want[d.Digest], s+" ") {
				t.Errorf("index.json attachment entry %+v", d)
			}
		}
	}
	if marked != len(want) {
		t.Fatalf("%d attachment entries in index.json, want %d", marked, len(want))
	}
	if out, err := exec.Command("skopeo", "copy", "--all", "oci:"+exp+":up/acme/app:1.0", "dir:"+filepath.Join(m.dir, "skopeo")).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy of the image from the layout with attachments: %v\n%s", err, out)
	}
	if out, err := runOras(t, "discover", "--format", "json", "--oci-layout", exp+"@"+indexDigest.String()); err != nil || !strings.Contains(out, sbom.String()) {
		t.Fatalf("oras discover --oci-layout: %v\n%s", err, out)
	}

	// The tar form carries them too.
	tarball := filepath.Join(m.dir, "export.tar")
	export(t, m, tarball, "up/acme/app:1.0")
	tcfg, _ := m.offline(t)
	var stdout, stderr bytes.Buffer
	if err := runCommand(t.Context(), "mirror", []string{"import", "--json", "--config", tcfg, tarball}, &stdout, &stderr); err != nil {
		t.Fatalf("tar import: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var res struct{ Attachments int }
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Attachments != len(want) {
		t.Fatalf("tar import result: %v %s", err, stdout.String())
	}

	cfg, _ := m.offline(t)
	out, err := runMirrorArgs(t, "import", "--config", cfg, exp)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil || !strings.Contains(out, "already imported: nothing changed") {
		t.Fatalf("second import: %v\n%s", err, out)
	}
	cb, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(cb))

	ref := func(s string) name.Digest {
		d, err := name.NewDigest(addr+"/up/acme/app@"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for subject, att := range map[string]v1.Hash{indexDigest.String(): sbom, platform.Digest.String(): sig} {
		if subject == platform.Digest.String() {
			// A platform manifest is a subject once its index was pulled.
			if _, err := remote.Index(ref(indexDigest.String())); err != nil {
				t.Fatal(err)
			}
		}
		idx, err := remote.Referrers(ref(subject))
		if err != nil {
			t.Fatalf("referrers of %s through the offline proxy: %v", subject, err)
		}
		rm, _ := idx.IndexManifest()
		if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != att {
			t.Fatalf("referrers of %s offline: %+v, want %s", subject, rm.Manifests, att)
		}
		img, err := remote.Image(ref(att.String()))
		if err != nil {
			t.Fatalf("pull attachment offline: %v", err)
		}
		testenv.ReadLayers(t, img)
	}
	if out, err := runOras(t, "discover", "--plain-http", "--format", "json", "--depth", "1", addr+"/up/acme/app@"+indexDigest.String()); err != nil || !strings.Contains(out, sbom.String()) {
		t.Fatalf("oras discover through the offline proxy: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + addr + "/v2/up/acme/app/manifests/sha256-" + indexDigest.Hex)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(tb), sbom.String()) {
		t.Fatalf("tag schema tag offline: %d %s", resp.StatusCode, tb)
	}
	resp, err = http.Get("http://" + addr + "/v2/up/acme/app/manifests/sha256-" + indexDigest.Hex + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Content-Digest") != cosignSig.String() {
		t.Fatalf("cosign tag offline: %d %s, want %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), cosignSig)
	}
}

// An attachment of a subject the export does not approve is extra content:
// the import is refused whole and nothing is loaded.
func TestMirrorAttachmentOfUnapprovedSubjectRefused(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	m.up.PushRandomImage(t, "acme/app:unsigned", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	unsigned := m.up.Descriptor(t, "acme/app:unsigned")
	evil := m.up.PushArtifact(t, "acme/app", unsigned, attSBOM, `{"evil":1}`)

	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")

	// Add the unsigned subject's artifact as if it were an attachment.
	img, err := remote.Image(m.up.Ref(t, "acme/app@"+evil.String()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	writeBlob := func(h v1.Hash, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(exp, "blobs", "sha256", h.Hex), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeBlob(evil, raw)
	cfgb, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	writeBlob(cfgName, cfgb)
	ls, _ := img.Layers()
	for _, l := range ls {
		d, _ := l.Digest()
		rc, _ := l.Compressed()
		lb, _ := io.ReadAll(rc)
		writeBlob(d, lb)
	}
	p := filepath.Join(exp, "trustproxy-mirror.json")
	var ix map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatal(err)
	}
	ix["attachments"] = []map[string]any{{"repository": "up/acme/app", "subject": unsigned.Digest.String(), "digest": evil.String(),
		"mediaType": string(types.OCIManifestSchema1), "size": len(raw), "artifactType": attSBOM}}
	b, _ = json.Marshal(ix)
	writeFile(t, p, string(b))

	cfg, root := m.offline(t)
	out, err := runMirrorArgs(t, "import", "--config", cfg, exp)
	if err == nil || !strings.Contains(err.Error(), "import refused, nothing loaded") ||
		!strings.Contains(err.Error(), "attachment "+evil.String()+" of up/acme/app@"+unsigned.Digest.String()+": its subject is not an approved manifest of this export") {
		t.Fatalf("import of an export with an unapproved subject's attachment: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "cache")); len(entries) != 0 {
		t.Fatalf("the refused import loaded something: %v", entries)
	}
}

func runOras(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("oras"); err != nil {
		testenv.SkipOrFail(t, "oras is not installed")
	}
	out, err := exec.Command("oras", args...).CombinedOutput()
	return string(out), err
}

// The importing side's rule decides which attachments it serves: an export
// carrying an artifact type this side's `attachments` setting excludes is
// refused whole, as a reference this side's policy denies would be.
func TestMirrorAttachmentTypeThisSideExcludes(t *testing.T) {
	m := newMirrorSides(t)
	m.up.PushRandomImage(t, "acme/app:1.0", 512, 1, types.OCIManifestSchema1)
	m.sign(t, "acme/app:1.0")
	subject := m.up.Descriptor(t, "acme/app:1.0")
	sbom := m.up.PushArtifact(t, "acme/app", subject, attSBOM, `{"sbom":1}`)
	m.up.PushCosignSignature(t, "acme/app", subject.Digest)
	// The online rule serves SBOMs only: the cosign signature is left out
	// of the export, which still succeeds.
	ob, _ := os.ReadFile(m.online)
	writeFile(t, m.online, strings.Replace(string(ob), "trust: corp}]}", "trust: corp, attachments: {artifactTypes: ["+attSBOM+"]}}]}", 1))
	exp := filepath.Join(m.dir, "export")
	export(t, m, exp, "up/acme/app:1.0")
	var mix struct{ Attachments []struct{ Digest string } }
	b, _ := os.ReadFile(filepath.Join(exp, "trustproxy-mirror.json"))
	if err := json.Unmarshal(b, &mix); err != nil || len(mix.Attachments) != 1 || mix.Attachments[0].Digest != sbom.String() {
		t.Fatalf("exported attachments %+v (%v), want only %s", mix.Attachments, err, sbom)
	}

	cfg, _ := m.offline(t)
	b, _ = os.ReadFile(cfg)
	strict := strings.Replace(string(b), "trust: corp}]}", "trust: corp, attachments: {artifactTypes: ["+attSig+"]}}]}", 1)
	if strict == string(b) {
		t.Fatal("offline configuration changed shape")
	}
	writeFile(t, cfg, strict)
	out, err := runMirrorArgs(t, "import", "--config", cfg, exp)
	if err == nil || !strings.Contains(err.Error(), "attachment "+sbom.String()) ||
		!strings.Contains(err.Error(), `this side's rule for up/acme/app does not serve attachments of artifact type "`+attSBOM+`"`) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	writeFile(t, cfg, strings.Replace(strict, "["+attSig+"]", "["+attSig+", "+attSBOM+"]", 1))
	if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil {
		t.Fatalf("import with the type allowed: %v\n%s", err, out)
	}
}
