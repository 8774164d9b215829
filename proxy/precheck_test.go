package proxy

import (
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// Denied digests cost the upstream nothing: in an enforce repository with
// signed tags, neither a manifest digest that is no target hash (existing
// upstream or not) nor a blob outside an approved tree reaches upstream.
func TestDeniedDigestsCostNoUpstreamRequests(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 1024, 1, types.OCIManifestSchema1)
	unsigned := te.up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	te.sign(t, "acme/app:1.0", nil)
	ud, _ := unsigned.Digest()
	layers, _ := unsigned.Layers()
	ld, _ := layers[0].Digest()

	before := te.up.Requests()
	paths := []string{"/v2/acme/app/manifests/" + ud.String(), "/v2/acme/app/blobs/" + ld.String()}
	for i := range 50 {
		paths = append(paths, "/v2/acme/app/manifests/"+digest.FromString(fmt.Sprint(i)).String(),
			"/v2/acme/other/manifests/"+digest.FromString(fmt.Sprint(i)).String())
	}
	for _, p := range paths {
		for _, method := range []string{"GET", "HEAD"} {
			resp := te.get(t, method, p, nil)
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Fatalf("%s %s: %d; want 403", method, p, resp.StatusCode)
			}
		}
	}
	if n := te.up.Requests() - before; n != 0 {
		t.Fatalf("%d denied requests caused %d upstream requests; want 0", 2*len(paths), n)
	}
}
