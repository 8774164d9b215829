package cnab

import (
	"encoding/json"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzStrictJSON: what checkStrictJSON accepts is one valid JSON object.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `{"a":{"b":[1,{"c":null}]}}`, `[]`, `{"a":1}{}`, `{"\u0041":1,"a":2}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkStrictJSON(b) == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}

// FuzzParseBundleJSON: bundle.json bytes come from the upstream.
func FuzzParseBundleJSON(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":"v1.2.0","name":"app","version":"1.0.0","invocationImages":[{"imageType":"docker","image":"x/y@sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}],"images":{"web":{"imageType":"docker","image":"x/w","contentDigest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}}}`))
	f.Add([]byte(`{"images":{"a":{"size":-1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := parseBundleJSON(b)
		if err != nil {
			return
		}
		for _, img := range doc.Images {
			_, _ = img.size()
		}
		for _, img := range doc.InvocationImages {
			_, _ = img.size()
		}
	})
}

// FuzzParseConfigManifest and FuzzDecodeIndex: the cnab-to-oci config
// manifest and bundle index come from the upstream.
func FuzzParseConfigManifest(f *testing.F) {
	f.Add(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cnab.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":10},"layers":[]}`))
	f.Add("application/vnd.docker.distribution.manifest.v2+json", []byte(`{"schemaVersion":2}`))
	f.Fuzz(func(t *testing.T, mt string, b []byte) { _, _ = parseConfigManifest(mt, b) })
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add("application/vnd.oci.image.index.v1+json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":{"io.cnab.manifest.type":"config"}}]}`))
	f.Add("", []byte(`{"manifests":null}`))
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		mt, ix, err := decodeIndex(ct, b)
		if err != nil {
			return
		}
		_ = IsBundle(mt, b)
		_, _ = classifyIndex(mt, ix)
	})
}
