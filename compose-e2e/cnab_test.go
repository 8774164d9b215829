package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// TestCNABBundle pushes a cnab-to-oci bundle (cnab-to-oci's converter) with
// an invocation image and two components to the stack's upstream, signs its
// bundle.json with `trustproxy trust add`, and pulls it through the proxy
// container the way cnab-to-oci and porter do: the index by tag, the config
// manifest and bundle.json, then every image by digest from the bundle's
// repository. A component asked for alone before its bundle is refused.
func TestCNABBundle(t *testing.T) {
	s := needStack(t)
	up := &testenv.Registry{Host: s.registry, URL: "http://" + s.registry}
	p := up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)

	alone := s.proxyRef("acme/bundle@" + p.Components["db"].String())
	_, err := crane.Manifest(alone, craneOpts(t)...)
	wantDenied(t, "component before its bundle", err, p.Components["db"].String())

	if _, err := s.trust(t.Context(), "add", s.registry+"/acme/bundle:1.0", "--insecure",
		"--name", upstreamName+"/acme/bundle", "--repo", s.tufRepo()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.trust(t.Context(), "publish", "--repo", s.tufRepo(), "--keys", s.tufKeys()); err != nil {
		t.Fatal(err)
	}
	ref := s.proxyRef("acme/bundle:1.0")
	var index []byte
	for deadline := time.Now().Add(30 * time.Second); ; { // the proxy refreshes its trust data every 2 s
		if index, err = crane.Manifest(ref, craneOpts(t)...); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("bundle index %s after signing: %v", ref, err)
	}
	if string(index) != string(p.Index) {
		t.Fatalf("index bytes changed on the way:\n%s\n%s", index, p.Index)
	}
	if _, err := crane.Manifest(s.proxyRef("acme/bundle@"+p.ConfigManifestDigest.String()), craneOpts(t)...); err != nil {
		t.Fatalf("config manifest: %v", err)
	}
	layer, err := crane.PullLayer(s.proxyRef("acme/bundle@"+p.BundleDigest.String()), craneOpts(t)...)
	if err != nil {
		t.Fatalf("bundle.json blob: %v", err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatalf("bundle.json blob: %v", err)
	}
	var bundle map[string]any
	err = json.NewDecoder(rc).Decode(&bundle)
	rc.Close()
	if err != nil || bundle["name"] == nil {
		t.Fatalf("bundle.json through the proxy: %v %v", bundle, err)
	}
	images := map[string]string{"invocation": p.Invocation.String()}
	for name, d := range p.Components {
		images[name] = d.String()
	}
	for name, d := range images {
		body, err := crane.Manifest(s.proxyRef("acme/bundle@"+d), craneOpts(t)...)
		if err != nil {
			t.Fatalf("%s image %s: %v", name, d, err)
		}
		var m struct{ Manifests []struct{ Digest string } }
		if json.Unmarshal(body, &m) == nil && len(m.Manifests) > 0 {
			d = m.Manifests[0].Digest // a multi-arch component: pull one platform's image
		}
		img, err := crane.Pull(s.proxyRef("acme/bundle@"+d), craneOpts(t)...)
		if err != nil {
			t.Fatalf("%s image %s: %v", name, d, err)
		}
		if err := readImage(img); err != nil {
			t.Fatalf("%s image %s does not validate: %v", name, d, err)
		}
	}
}
