package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	intoto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// thickSides is a signed bundle pushed the way cnab-to-oci pushes it and
// archived the way `porter archive` writes it.
type thickSides struct {
	*mirrorSides
	pb      testenv.PushedBundle
	archive string
}

func newThickSides(t *testing.T) *thickSides {
	t.Helper()
	m := newMirrorSides(t)
	pb := m.up.PushBundle(t, "acme/bundle:v1.0", testenv.SampleBundle(), testenv.BundleOCI)
	m.sign(t, "acme/bundle:v1.0")
	s := &thickSides{mirrorSides: m, pb: pb, archive: filepath.Join(m.dir, "bundle.tgz")}
	m.up.PorterArchive(t, pb, s.archive, nil)
	return s
}

func (s *thickSides) importThick(t *testing.T, cfg, ref, archive string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"import", "--config", cfg, "--bundle", ref}, extra...)
	return runMirrorArgs(t, append(args, archive)...)
}

// TestMirrorImportThickBundle: a porter-written thick bundle imports,
// verifies, and is served by the offline proxy as if it had been pulled:
// the same index digest cnab-to-oci pushed, its config manifest,
// bundle.json and every image, layers included.
func TestMirrorImportThickBundle(t *testing.T) {
	s := newThickSides(t)
	// A second bundle signed by its index (porter's bundle digest), signed
	// before the first import so that import carries its target too.
	pb2 := s.up.PushBundle(t, "acme/bundle2:v1.0", testenv.SampleBundle(), testenv.BundleOCI)
	s.trust(t, "add", s.up.Host+"/acme/bundle2:v1.0", "--repo", s.repo, "--keys", s.keys, "--insecure",
		"--name", "up/acme/bundle2", "--bundle-index", "--publish")
	archive2 := filepath.Join(s.dir, "bundle2.tgz")
	s.up.PorterArchive(t, pb2, archive2, nil)
	// A third pushed in cnab-to-oci's Docker manifest-list fallback and
	// signed by its bundle.json: served as the rebuilt (OCI) index.
	pb3 := s.up.PushBundle(t, "acme/bundle3:v1.0", testenv.SampleBundle(), testenv.BundleDockerManifestList)
	s.sign(t, "acme/bundle3:v1.0")
	archive3 := filepath.Join(s.dir, "bundle3.tgz")
	s.up.PorterArchive(t, pb3, archive3, nil)

	cfg, _ := s.offline(t)
	if out, err := runMirrorArgs(t, "import", "--config", cfg, s.archive); err == nil || !strings.Contains(err.Error(), "--bundle") {
		t.Fatalf("import of a thick bundle without --bundle = %v\n%s; want a hint at --bundle", err, out)
	}
	out, err := s.importThick(t, cfg, "up/acme/bundle:v1.0", s.archive, "--trust-dir", "corp="+s.repo)
	if err != nil || !strings.Contains(out, "CNAB thick bundle verified: up/acme/bundle:v1.0 is index "+s.pb.IndexDigest.String()) ||
		!strings.Contains(out, "imported 1 references") {
		t.Fatalf("thick import: %v\n%s", err, out)
	}
	if out, err := s.importThick(t, cfg, "up/acme/bundle:v1.0", s.archive); err != nil || !strings.Contains(out, "already imported: nothing changed") {
		t.Fatalf("second thick import: %v\n%s", err, out)
	}
	// Verified against the trust data this side now holds (no --trust-dir).
	if out, err := s.importThick(t, cfg, "up/acme/bundle2:v1.0", archive2); err != nil || !strings.Contains(out, pb2.IndexDigest.String()) {
		t.Fatalf("thick import of the index-signed bundle: %v\n%s", err, out)
	}

	if out, err := s.importThick(t, cfg, "up/acme/bundle3:v1.0", archive3); err != nil {
		t.Fatalf("thick import of the fallback-pushed bundle: %v\n%s", err, out)
	}

	b, _ := os.ReadFile(cfg)
	addr := startFromConfig(t, string(b))
	for _, pb := range []testenv.PushedBundle{s.pb, pb2} {
		repo := addr + "/up/" + pb.Ref.Context().RepositoryStr()
		pullBundleLikeCNABToOCI(t, repo, pb)
	}
	ix3, err := crane.Manifest(addr+"/up/acme/bundle3:v1.0", crane.Insecure)
	var parsed ocispec.Index
	if err == nil {
		err = json.Unmarshal(ix3, &parsed)
	}
	if err != nil || len(parsed.Manifests) != 4 || parsed.Manifests[0].Annotations["io.cnab.manifest.type"] != "config" {
		t.Fatalf("fallback-pushed bundle through the offline proxy: %v\n%s", err, ix3)
	}
	cm, err := crane.Manifest(addr+"/up/acme/bundle3@"+parsed.Manifests[0].Digest.String(), crane.Insecure)
	var cfgMan ocispec.Manifest
	if err == nil {
		err = json.Unmarshal(cm, &cfgMan)
	}
	if err != nil || cfgMan.Config.Digest != pb3.BundleDigest {
		t.Fatalf("fallback-pushed bundle's config manifest names %s (%v); want the signed bundle.json %s", cfgMan.Config.Digest, err, pb3.BundleDigest)
	}
	if _, err := crane.Digest(addr+"/up/acme/other:v1.0", crane.Insecure); err == nil {
		t.Fatal("the offline proxy served what was never imported")
	}
}

// pullBundleLikeCNABToOCI retraces cnab-to-oci's pull (index by tag, config
// manifest, bundle.json) and then every image by digest with its blobs, as
// porter's install would, through the proxy at repo.
func pullBundleLikeCNABToOCI(t *testing.T, repo string, pb testenv.PushedBundle) {
	t.Helper()
	tag := pb.Ref.Identifier()
	got, err := crane.Digest(repo+":"+tag, crane.Insecure)
	if err != nil || got != pb.IndexDigest.String() {
		t.Fatalf("%s:%s through the offline proxy = %s, %v; want the pushed index %s", repo, tag, got, err, pb.IndexDigest)
	}
	ixBody, err := crane.Manifest(repo+":"+tag, crane.Insecure)
	if err != nil || string(ixBody) != string(pb.Index) {
		t.Fatalf("index through the offline proxy differs from the pushed one (%v)", err)
	}
	var ix ocispec.Index
	if err := json.Unmarshal(ixBody, &ix); err != nil {
		t.Fatal(err)
	}
	for _, d := range ix.Manifests {
		ref := repo + "@" + d.Digest.String()
		if d.Annotations["io.cnab.manifest.type"] == "config" {
			man, err := crane.Manifest(ref, crane.Insecure)
			if err != nil || string(man) != string(pb.ConfigManifest) {
				t.Fatalf("config manifest through the offline proxy: %v", err)
			}
			bj, err := crane.PullLayer(repo+"@"+pb.BundleDigest.String(), crane.Insecure)
			if err != nil {
				t.Fatalf("bundle.json through the offline proxy: %v", err)
			}
			rc, err := bj.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(body) != string(pb.BundleJSON) {
				t.Fatalf("bundle.json through the offline proxy differs: %v", err)
			}
			continue
		}
		imgs := []string{ref}
		if d.MediaType == ocispec.MediaTypeImageIndex {
			idx, err := crane.Manifest(ref, crane.Insecure)
			var child ocispec.Index
			if err == nil {
				err = json.Unmarshal(idx, &child)
			}
			if err != nil {
				t.Fatalf("%s through the offline proxy: %v", ref, err)
			}
			imgs = imgs[:0]
			for _, c := range child.Manifests {
				imgs = append(imgs, repo+"@"+c.Digest.String())
			}
		}
		for _, r := range imgs {
			img, err := crane.Pull(r, crane.Insecure)
			if err != nil {
				t.Fatalf("%s through the offline proxy: %v", r, err)
			}
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				rc, err := l.Compressed()
				if err == nil {
					_, err = io.Copy(io.Discard, rc)
					rc.Close()
				}
				if err != nil {
					t.Fatalf("layer of %s through the offline proxy: %v", r, err)
				}
			}
		}
	}
}

// TestMirrorImportThickRefusesAttacks: each bad thick bundle is refused
// whole, with a message naming the first failure, and the offline side is
// left exactly as it was.
func TestMirrorImportThickRefusesAttacks(t *testing.T) {
	s := newThickSides(t)
	unsigned := s.up.PushBundle(t, "acme/unsigned-bundle:v1.0", testenv.SampleBundle(), testenv.BundleOCI)
	unsignedArchive := filepath.Join(s.dir, "unsigned.tgz")
	s.up.PorterArchive(t, unsigned, unsignedArchive, nil)
	extra := s.up.PushRandomImage(t, "acme/extra:1", 512, 1, "application/vnd.oci.image.manifest.v1+json")
	// A bundle pushed in cnab-to-oci's Docker manifest-list fallback and
	// signed by that index: the index rebuilt from the archive is the first
	// (OCI) form, which no target names.
	fallback := s.up.PushBundle(t, "acme/fallback:v1.0", testenv.SampleBundle(), testenv.BundleDockerManifestList)
	s.trust(t, "add", s.up.Host+"/acme/fallback:v1.0", "--repo", s.repo, "--keys", s.keys, "--insecure",
		"--name", "up/acme/fallback", "--bundle-index", "--publish")
	fallbackArchive := filepath.Join(s.dir, "fallback.tgz")
	s.up.PorterArchive(t, fallback, fallbackArchive, nil)
	// Another publisher's repository, signing the same bundle.
	attacker := filepath.Join(s.dir, "attacker")
	s.trust(t, "init", "--repo", attacker, "--keys", filepath.Join(s.dir, "attacker-keys"))
	s.trust(t, "add", s.up.Host+"/acme/bundle:v1.0", "--repo", attacker, "--keys", filepath.Join(s.dir, "attacker-keys"),
		"--insecure", "--name", "up/acme/bundle", "--publish")

	archive := func(edit func(dir string)) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "bundle.tgz")
			s.up.PorterArchive(t, s.pb, p, edit)
			return p
		}
	}
	blobs := func(dir string) string { return filepath.Join(dir, "artifacts", "layout", "blobs", "sha256") }
	for _, tc := range []struct {
		name    string
		ref     string
		archive func(t *testing.T) string
		want    string
		trust   string // --trust-dir corp=; default the publisher's repository
	}{
		{"a tampered image", "", archive(func(dir string) {
			p := largestBlob(t, filepath.Join(dir, "artifacts", "layout"))
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
		}), "content hashes to", ""},
		{"bundle.json differs from its TUF target", "", archive(func(dir string) {
			p := filepath.Join(dir, "bundle.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "trustproxy test bundle", "trustproxy test bundlX", 1)), 0o644)
		}), `matches neither the bundle.json`, ""},
		{"an image missing from the archive", "", archive(func(dir string) {
			os.Remove(filepath.Join(blobs(dir), s.pb.Components["db"].Encoded()))
		}), `component "db": image ` + s.pb.Components["db"].String() + ` (bundle.json contentDigest) is not in the archive`, ""},
		{"a layer missing from the archive", "", archive(func(dir string) {
			b, err := os.ReadFile(filepath.Join(blobs(dir), s.pb.Invocation.Encoded()))
			var man ocispec.Manifest
			if err == nil {
				err = json.Unmarshal(b, &man)
			}
			if err != nil || len(man.Layers) == 0 {
				t.Fatalf("invocation image manifest: %v", err)
			}
			os.Remove(filepath.Join(blobs(dir), man.Layers[0].Digest.Encoded()))
		}), "missing from the export", ""},
		{"bundle.json gives an image another size", "", archive(func(dir string) {
			editBundleJSON(t, filepath.Join(dir, "bundle.json"), func(b *bundle.Bundle) {
				db := b.Images["db"]
				db.Size++
				b.Images["db"] = db
			})
		}), `component "db": the archive's manifest ` + s.pb.Components["db"].String() + ` has`, ""},
		{"bundle.json gives an image another media type", "", archive(func(dir string) {
			editBundleJSON(t, filepath.Join(dir, "bundle.json"), func(b *bundle.Bundle) {
				db := b.Images["db"]
				db.MediaType = ocispec.MediaTypeImageIndex
				b.Images["db"] = db
			})
		}), `component "db": the archive's manifest ` + s.pb.Components["db"].String() + ` is a application/vnd.oci.image.manifest.v1+json; bundle.json says application/vnd.oci.image.index.v1+json`, ""},
		{"the trust data of another root", "", func(*testing.T) string { return s.archive },
			"does not verify against this side's pinned root", attacker},
		{"a bundle signed by the index of a fallback push", "up/acme/fallback:v1.0", func(*testing.T) string { return fallbackArchive },
			"matches neither the bundle.json", ""},
		{"an unsigned image added to the archive", "", archive(func(dir string) {
			p, err := layout.FromPath(filepath.Join(dir, "artifacts", "layout"))
			if err == nil {
				err = p.AppendImage(extra)
			}
			if err != nil {
				t.Fatal(err)
			}
		}), "which bundle.json does not name", ""},
		{"an extra blob in the layout", "", archive(func(dir string) {
			b := []byte("not vouched for")
			os.WriteFile(filepath.Join(blobs(dir), digest.FromBytes(b).Encoded()), b, 0o644)
		}), "no approved manifest references it", ""},
		{"trust data planted in the layout", "", func(t *testing.T) string {
			return appendToArchive(t, s.archive, "./artifacts/layout/tuf/corp/targets/planted", "not vouched for")
		}, "artifacts/layout/tuf: not part of an OCI image layout", ""},
		{"an unsigned bundle", "up/acme/unsigned-bundle:v1.0", func(*testing.T) string { return unsignedArchive },
			`no target "up/acme/unsigned-bundle:v1.0"`, ""},
		{"a signed bundle under another tag", "up/acme/bundle:v2.0", func(*testing.T) string { return s.archive },
			`no target "up/acme/bundle:v2.0"`, ""},
		{"a truncated archive", "", func(t *testing.T) string {
			b, _ := os.ReadFile(s.archive)
			p := filepath.Join(t.TempDir(), "cut.tgz")
			os.WriteFile(p, b[:len(b)*6/10], 0o644)
			return p
		}, "unexpected EOF", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, root := s.offline(t)
			ref := tc.ref
			if ref == "" {
				ref = "up/acme/bundle:v1.0"
			}
			src := tc.archive(t)
			before := snapshotTree(t, root)
			trust := tc.trust
			if trust == "" {
				trust = s.repo
			}
			out, err := s.importThick(t, cfg, ref, src, "--trust-dir", "corp="+trust)
			if err == nil || !strings.Contains(err.Error(), "import refused, nothing loaded") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import = %v\n%s\nwant a refusal naming %q", err, out, tc.want)
			}
			t.Logf("refused: %v", err)
			requireUnchanged(t, root, before)
		})
	}
}

// appendToArchive copies a gzipped tar and adds one file to it.
func appendToArchive(t *testing.T, src, name, body string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "appended.tgz")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = tw.WriteHeader(h)
		}
		if err == nil {
			_, err = io.Copy(tw, tr)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	err = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	if err == nil {
		_, err = tw.Write([]byte(body))
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// A thick bundle is verified against the trust repository of the rule that
// governs it (and those carried with it): another trust repository of this
// side, here one whose local metadata is corrupt, plays no part.
func TestMirrorImportThickUsesGoverningTrust(t *testing.T) {
	s := newThickSides(t)
	root := t.TempDir()
	other := filepath.Join(root, "other", "metadata")
	os.MkdirAll(other, 0o755)
	writeFile(t, filepath.Join(other, "timestamp.json"), "{not TUF")
	cfg := filepath.Join(root, "offline.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams: [{name: up, url: "http://192.0.2.1:9", offline: true}]
trust:
  corp: {metadata: %q, root: %q}
  other: {metadata: %q, root: %q}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}, {name: team, match: "up/team/**", mode: enforce, trust: other}]}
`, filepath.Join(root, "cache"), filepath.Join(root, "state"), filepath.Join(root, "tuf", "metadata"), s.rootPath(), other, s.rootPath()))
	if out, err := s.importThick(t, cfg, "up/acme/bundle:v1.0", s.archive, "--trust-dir", "corp="+s.repo); err != nil {
		t.Fatalf("thick import: %v\n%s", err, out)
	}
	if out, err := s.importThick(t, cfg, "up/team/bundle:v1.0", s.archive); err == nil || !strings.Contains(err.Error(), "trust other") {
		t.Fatalf("thick import under the rule of the corrupt trust repository = %v\n%s; want a refusal naming it", err, out)
	}
}

// Standard input ("-") takes a thick bundle as well as an export tar: the
// import looks at the first bytes and hands the plain import the stream
// whole. And an export's trust data verifies a thick bundle.
func TestMirrorImportThickSources(t *testing.T) {
	s := newThickSides(t)
	tarball := filepath.Join(s.dir, "export.tar")
	export(t, s.mirrorSides, tarball, "up/acme/bundle:v1.0")
	stdin := func(p string) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = f
		t.Cleanup(func() { os.Stdin = old; f.Close() })
	}
	cfg, _ := s.offline(t)
	stdin(s.archive)
	if out, err := s.importThick(t, cfg, "up/acme/bundle:v1.0", "-", "--trust-dir", "corp="+s.repo); err != nil ||
		!strings.Contains(out, "imported 1 references") {
		t.Fatalf("thick import from stdin: %v\n%s", err, out)
	}
	// An export's tuf/<name> serves as --trust-dir as well as the
	// publisher's repository does.
	dir := filepath.Join(s.dir, "export")
	export(t, s.mirrorSides, dir, "up/acme/bundle:v1.0")
	if out, err := s.importThick(t, func() string { c, _ := s.offline(t); return c }(), "up/acme/bundle:v1.0", s.archive,
		"--trust-dir", "corp="+filepath.Join(dir, "tuf", "corp")); err != nil || !strings.Contains(out, "imported 1 references") {
		t.Fatalf("thick import verified against an export's trust data: %v\n%s", err, out)
	}
	cfg2, _ := s.offline(t)
	stdin(tarball)
	if out, err := runMirrorArgs(t, "import", "--config", cfg2, "-"); err != nil || !strings.Contains(out, "imported 1 references") {
		t.Fatalf("export tar from stdin: %v\n%s", err, out)
	}
}

// A rule that requires in-toto evaluates the layout, keys and links of the
// bundle's target (bundle.json the subject, nothing executed) from the
// trust repository carried with the archive; without its target files the
// import is refused.
func TestMirrorImportThickInToto(t *testing.T) {
	m := newMirrorSides(t)
	pb := m.up.PushBundle(t, "acme/bundle:v1.0", testenv.SampleBundle(), testenv.BundleOCI)
	layoutPath, linkDir, ownerPub := writeSupplyChainFor(t, filepath.Join(m.dir, "ops"), "bundle.json", pb.BundleDigest.Encoded(),
		func(dir, name string) (intoto.Key, intoto.Key, string) { return inTotoKey(t, dir, name) })
	m.trust(t, "add", m.up.Host+"/acme/bundle:v1.0", "--repo", m.repo, "--keys", m.keys, "--insecure", "--name", "up/acme/bundle",
		"--in-toto-layout", layoutPath, "--in-toto-links", linkDir, "--in-toto-pubkey", ownerPub, "--publish")
	archive := filepath.Join(m.dir, "bundle.tgz")
	m.up.PorterArchive(t, pb, archive, nil)
	offline := func() string {
		cfg, _ := m.offline(t)
		b, _ := os.ReadFile(cfg)
		writeFile(t, cfg, strings.Replace(string(b), "trust: corp}", "trust: corp, require: [tuf, in-toto]}", 1))
		return cfg
	}
	s := &thickSides{mirrorSides: m}
	stripped := filepath.Join(t.TempDir(), "repo")
	copyTree(t, m.repo, stripped)
	os.RemoveAll(filepath.Join(stripped, "targets"))
	if out, err := s.importThick(t, offline(), "up/acme/bundle:v1.0", archive, "--trust-dir", "corp="+stripped); err == nil ||
		!strings.Contains(err.Error(), "in-toto") {
		t.Fatalf("thick import without the in-toto target files = %v\n%s; want a refusal naming in-toto", err, out)
	}
	if out, err := s.importThick(t, offline(), "up/acme/bundle:v1.0", archive, "--trust-dir", "corp="+m.repo); err != nil {
		t.Fatalf("thick import with in-toto: %v\n%s", err, out)
	}
}

// editBundleJSON rewrites a bundle.json the way porter writes it (cnab-go).
func editBundleJSON(t *testing.T, p string, edit func(*bundle.Bundle)) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	bun, err := bundle.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	edit(bun)
	f, err := os.Create(p)
	if err == nil {
		_, err = bun.WriteTo(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
