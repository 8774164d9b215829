package attachment

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParse(t *testing.T) {
	subject := digest.FromString("subject")
	other := digest.FromString("other")
	blob := digest.FromString("blob")
	desc := func(mt string) ocispec.Descriptor { return ocispec.Descriptor{MediaType: mt, Digest: blob, Size: 4} }
	manifest := func(mt string, config string, layers []string, subj *digest.Digest, artifactType string) []byte {
		m := map[string]any{"schemaVersion": 2, "mediaType": mt, "config": desc(config)}
		var ls []ocispec.Descriptor
		for _, l := range layers {
			ls = append(ls, desc(l))
		}
		m["layers"] = ls
		if subj != nil {
			m["subject"] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: *subj, Size: 10}
		}
		if artifactType != "" {
			m["artifactType"] = artifactType
		}
		b, _ := json.Marshal(m)
		return b
	}
	const (
		oci    = ocispec.MediaTypeImageManifest
		cfg    = ocispec.MediaTypeImageConfig
		empty  = "application/vnd.oci.empty.v1+json"
		tarGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
		cosign = "application/vnd.dev.cosign.simplesigning.v1+json"
	)
	for _, tc := range []struct {
		name   string
		body   []byte
		tagged bool
		typ    string // want Type(); "" = refused
		err    string
	}{
		{"oras artifact", manifest(oci, empty, []string{"application/vnd.oci.image.layer.v1.tar"}, &subject, "application/sbom"), false, "application/sbom", ""},
		{"config media type as type", manifest(oci, "application/vnd.example+json", []string{"text/plain"}, &subject, ""), false, "application/vnd.example+json", ""},
		{"cosign signature by tag", manifest(oci, cfg, []string{cosign}, nil, ""), true, cfg, ""},
		{"cosign signature with a subject", manifest(oci, cfg, []string{cosign}, &subject, ""), false, cfg, ""},
		{"docker schema2 artifact", manifest("application/vnd.docker.distribution.manifest.v2+json", empty, nil, &subject, "x/y"), false, "x/y", ""},
		{"no subject field", manifest(oci, empty, nil, nil, "x/y"), false, "", "no subject field"},
		{"subject names another digest", manifest(oci, empty, nil, &other, "x/y"), false, "", "names " + other.String()},
		{"tagged but subject names another", manifest(oci, cfg, []string{cosign}, &other, ""), true, "", "names " + other.String()},
		{"runnable OCI image", manifest(oci, cfg, []string{tarGz}, &subject, ""), false, "", "runnable image"},
		{"runnable docker image", manifest("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json",
			[]string{"application/vnd.docker.image.rootfs.diff.tar.gzip"}, &subject, ""), false, "", "runnable image"},
		{"runnable image under a cosign tag", manifest(oci, cfg, []string{tarGz}, nil, ""), true, "", "runnable image"},
		{"index", manifest(ocispec.MediaTypeImageIndex, empty, nil, &subject, "x/y"), false, "", "not an image manifest"},
		{"not JSON", []byte("{"), false, "", "attachment manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(oci, tc.body, subject, tc.tagged)
			if tc.typ == "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != tc.typ {
				t.Fatalf("type %q, want %q", m.Type(), tc.typ)
			}
		})
	}
}

func TestParseTag(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		tag    string
		ok     bool
		cosign string
	}{
		{"sha256-" + hex, true, ""},
		{"sha256-" + hex + ".sig", true, "sig"},
		{"sha256-" + hex + ".att", true, "att"},
		{"sha256-" + hex + ".sbom", true, "sbom"},
		{"sha256-" + hex + ".exe", false, ""},
		{"sha256-" + hex[:60], false, ""},
		{"sha512-" + hex, false, ""},
		{"1.0", false, ""},
		{"sha256-" + strings.ToUpper(hex), false, ""},
	} {
		d, c, ok := ParseTag(tc.tag)
		if ok != tc.ok || c != tc.cosign || ok && d.Encoded() != hex {
			t.Errorf("ParseTag(%q) = %s %q %v", tc.tag, d, c, ok)
		}
		if ok && c == "" && SchemaTag(d) != tc.tag {
			t.Errorf("SchemaTag(%s) = %q", d, SchemaTag(d))
		}
	}
}

func TestFilterAndIndex(t *testing.T) {
	descs := []ocispec.Descriptor{{ArtifactType: "a"}, {ArtifactType: "b"}, {ArtifactType: "a"}}
	if got := Filter(descs, "a"); len(got) != 2 {
		t.Fatalf("filter a: %d", len(got))
	}
	if got := Filter(descs, ""); len(got) != 3 {
		t.Fatalf("no filter: %d", len(got))
	}
	b, _ := json.Marshal(Index(Filter(descs, "none")))
	if !strings.Contains(string(b), `"manifests":[]`) || !strings.Contains(string(b), `"schemaVersion":2`) {
		t.Fatalf("empty index: %s", b)
	}
}
