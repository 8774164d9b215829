package cnab_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// IsBundle runs on every index the proxy fetches.
func BenchmarkIsBundle(b *testing.B) {
	r := testenv.NewRegistry(b)
	plain := r.PushRandomIndex(b, "plain/index:1", 4, types.OCIImageIndex)
	plainBody, err := plain.RawManifest()
	if err != nil {
		b.Fatal(err)
	}
	p := r.PushBundle(b, "acme/bench:1", testenv.SampleBundle(), testenv.BundleOCI)
	for _, bc := range []struct {
		name string
		body []byte
		want bool
	}{{"plain-index", plainBody, false}, {"bundle-index", p.Index, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if cnab.IsBundle(ocispec.MediaTypeImageIndex, bc.body) != bc.want {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}
