package proxy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The README's cosign example with the real cosign CLI: `cosign sign --key`
// against the upstream (distribution has no referrers API, so cosign keeps
// its signature under the sha256-<hex>.sig tag), then `cosign verify --key`
// through trustproxy, by the signed tag and by digest. No transparency log
// is reachable here, so signing skips the upload and verification skips the
// log, as an offline site would configure cosign. The signature of an image
// trustproxy does not serve is not served either, so verification fails.
func TestCosignVerifyThroughTrustproxy(t *testing.T) {
	te := newTrustEnv(t)
	te.up.PushRandomImage(t, "acme/app:1.0", 1024, 1, types.OCIManifestSchema1)
	te.up.PushRandomImage(t, "acme/app:unsigned", 1024, 1, types.OCIManifestSchema1)
	signed := te.sign(t, "acme/app:1.0", nil)
	unsigned := te.up.Descriptor(t, "acme/app:unsigned").Digest.String()

	dir := t.TempDir()
	// cosign keeps a cache of Sigstore's TUF root under HOME; keep it in the test.
	env := []string{"HOME=" + dir, "COSIGN_PASSWORD=", "COSIGN_YES=true"}
	cosign := func(args ...string) (string, error) {
		t.Helper()
		return runToolEnv(t, env, "cosign", args...)
	}
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if out, err := cosign("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	for _, subject := range []string{signed.Digest, unsigned} {
		if out, err := cosign("sign", "--key", key, "--tlog-upload=false", "--allow-http-registry",
			te.up.Host+"/acme/app@"+subject); err != nil {
			t.Fatalf("cosign sign %s upstream: %v\n%s", subject, err, out)
		}
	}

	through := te.host + "/" + upName + "/acme/app"
	verify := func(ref string) (string, error) {
		return cosign("verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
	}
	for _, ref := range []string{through + ":1.0", through + "@" + signed.Digest} {
		out, err := verify(ref)
		if err != nil {
			t.Fatalf("cosign verify %s through trustproxy: %v\n%s", ref, err, out)
		}
		if !strings.Contains(out, signed.Digest) {
			t.Fatalf("cosign verify %s: the verified payload does not name %s\n%s", ref, signed.Digest, out)
		}
	}

	// Another key's signature does not verify: cosign really checked it.
	if out, err := cosign("generate-key-pair", "--output-key-prefix", filepath.Join(dir, "other")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	if out, err := cosign("verify", "--key", filepath.Join(dir, "other.pub"), "--insecure-ignore-tlog=true",
		"--allow-http-registry", through+":1.0"); err == nil {
		t.Fatalf("cosign verify with another key succeeded through trustproxy\n%s", out)
	}

	// The unsigned image's signature exists upstream, but trustproxy serves
	// neither the image nor its attachments.
	out, err := verify(through + "@" + unsigned)
	if err == nil {
		t.Fatalf("cosign verify of an image trustproxy does not serve succeeded\n%s", out)
	}
	if !strings.Contains(out, "DENIED") && !strings.Contains(out, "403") {
		t.Fatalf("cosign verify of an unserved image failed without trustproxy's denial\n%s", out)
	}
}
