package cnab_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// httpFetcher reads raw bytes from a registry over plain HTTP without
// verifying anything, the way the proxy's own Fetcher sees an upstream, so
// that Resolve's checks (not go-containerregistry's) meet tampered content.
type httpFetcher struct {
	base, repo string
}

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, string(types.DockerManifestList), ocispec.MediaTypeImageManifest, string(types.DockerManifestSchema2),
}, ", ")

func (h httpFetcher) get(ctx context.Context, path string, limit int64) (string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/v2/"+h.repo+path, nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", nil, err
	}
	if int64(len(b)) > limit {
		return "", nil, fmt.Errorf("GET %s: more than %d bytes", path, limit)
	}
	return resp.Header.Get("Content-Type"), b, nil
}

func (h httpFetcher) Manifest(ctx context.Context, d digest.Digest) (string, []byte, error) {
	return h.get(ctx, "/manifests/"+d.String(), cnab.MaxManifestSize)
}

func (h httpFetcher) Blob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	_, b, err := h.get(ctx, "/blobs/"+d.String(), maxSize)
	return b, err
}

// resolveOverHTTP fetches repo:tag's index from r and resolves it with an
// httpFetcher.
func resolveOverHTTP(t *testing.T, r *testenv.Registry, repo, tag string) (*cnab.Bundle, error) {
	t.Helper()
	h := httpFetcher{base: r.URL, repo: repo}
	mt, body, err := h.get(context.Background(), "/manifests/"+tag, cnab.MaxManifestSize)
	if err != nil {
		t.Fatalf("fetch index %s:%s: %v", repo, tag, err)
	}
	if !cnab.IsBundle(mt, body) {
		t.Fatalf("%s:%s (%s) is not recognised as a bundle", repo, tag, mt)
	}
	return cnab.Resolve(context.Background(), h, digest.FromBytes(body), mt, body)
}
