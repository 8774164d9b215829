package mirror

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Source is the verifying pull path an export reads through: a trustproxy
// serving the OCI distribution API, so that exactly what the proxy would
// serve a client, and nothing else, is exported.
type Source interface {
	Manifest(ctx context.Context, upstream, repo, ref string) (mediaType string, body []byte, err error)
	Blob(ctx context.Context, upstream, repo string, d digest.Digest) (io.ReadCloser, error)
}

// HTTPSource reads from a trustproxy at Base (e.g. http://127.0.0.1:5000),
// naming the upstream by path prefix as any client can.
type HTTPSource struct {
	Base   string
	Client *http.Client
}

var acceptManifests = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

func (s HTTPSource) get(ctx context.Context, upstream, repo, kind, ref string) (*http.Response, error) {
	u := fmt.Sprintf("%s/v2/%s/%s/%s/%s", strings.TrimSuffix(s.Base, "/"), upstream, repo, kind, ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptManifests)
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &statusError{status: resp.StatusCode,
			msg: fmt.Sprintf("%s/%s %s %s: %s: %s", upstream, repo, kind, ref, resp.Status, strings.TrimSpace(string(msg)))}
	}
	return resp, nil
}

// Manifest returns the manifest as the proxy served it.
func (s HTTPSource) Manifest(ctx context.Context, upstream, repo, ref string) (string, []byte, error) {
	resp, err := s.get(ctx, upstream, repo, "manifests", ref)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return "", nil, err
	}
	if len(body) > maxManifestBytes {
		return "", nil, fmt.Errorf("manifest %s/%s:%s is larger than %d bytes", upstream, repo, ref, maxManifestBytes)
	}
	return resp.Header.Get("Content-Type"), body, nil
}

// Blob opens a blob's body.
func (s HTTPSource) Blob(ctx context.Context, upstream, repo string, d digest.Digest) (io.ReadCloser, error) {
	resp, err := s.get(ctx, upstream, repo, "blobs", d.String())
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// statusError is the proxy's refusal or failure of one request.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }
