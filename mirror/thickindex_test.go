package mirror

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cnabio/cnab-go/bundle"
	"github.com/cnabio/cnab-to-oci/converter"
	"github.com/cnabio/cnab-to-oci/relocation"
	dockerref "github.com/docker/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// TestRebuildThinMatchesCNABToOCI: the config manifest and index rebuilt
// from a thick bundle's bundle.json are byte for byte what cnab-to-oci's
// PrepareForPush and ConvertBundleToOCIIndex build from the same bundle, so
// a target over the pushed index verifies the rebuilt one.
func TestRebuildThinMatchesCNABToOCI(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*bundle.Bundle)
	}{
		{"sample", func(*bundle.Bundle) {}},
		{"no maintainers or keywords", func(b *bundle.Bundle) { b.Maintainers, b.Keywords = nil, nil }},
		{"escapes in annotations", func(b *bundle.Bundle) {
			b.Description = "line one\nline <two> & \"three\"\tü"
			b.Maintainers = []bundle.Maintainer{{Name: "A <a>", URL: "https://example.com/?a=1&b=2"}, {Name: "B", Email: "b@example.com"}}
			b.Keywords = []string{"x&y", "</script>"}
		}},
		{"no components", func(b *bundle.Bundle) { b.Images = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testenv.SampleBundle()
			tc.edit(b)
			target, err := dockerref.ParseNormalizedNamed("registry.example/acme/bundle")
			if err != nil {
				t.Fatal(err)
			}
			reloc := relocation.ImageRelocationMap{}
			place := func(i int, img *bundle.BaseImage) {
				d := digest.FromString(fmt.Sprint(i))
				img.Digest, img.Size = d.String(), uint64(500+i)
				reloc[img.Image] = target.Name() + "@" + d.String()
			}
			place(0, &b.InvocationImages[0].BaseImage)
			i := 1
			for n, img := range b.Images {
				place(i, &img.BaseImage)
				b.Images[n] = img
				i++
			}
			prepared, err := converter.PrepareForPush(b)
			if err != nil {
				t.Fatal(err)
			}
			want, err := converter.ConvertBundleToOCIIndex(b, target, prepared.ManifestDescriptor, reloc)
			if err != nil {
				t.Fatal(err)
			}
			wantIndex, _ := json.Marshal(want)

			var tb thickBundle
			if err := json.Unmarshal(prepared.ConfigBlob, &tb); err != nil {
				t.Fatal(err)
			}
			parts, err := tb.parts()
			if err != nil {
				t.Fatal(err)
			}
			got, err := rebuildThin(&tb, prepared.ConfigBlob, parts)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.configManifest) != string(prepared.Manifest) {
				t.Errorf("config manifest\n got %s\nwant %s", got.configManifest, prepared.Manifest)
			}
			if string(got.index) != string(wantIndex) {
				t.Errorf("index\n got %s\nwant %s", got.index, wantIndex)
			}
		})
	}
}
