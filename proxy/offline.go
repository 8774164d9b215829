package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// errOffline answers for what an offline upstream (an air-gapped site fed
// by mirror import) does not have in the cache: nothing is dialled, and the
// client learns that the content was never imported.
func errOffline(rt route, path string) *ociError {
	code := "MANIFEST_UNKNOWN"
	if strings.HasPrefix(path, "blobs/") {
		code = "BLOB_UNKNOWN"
	}
	return &ociError{Status: http.StatusNotFound, Code: code, Message: fmt.Sprintf(
		"trustproxy: %s %s: upstream %s is offline (served from imported content only) and this was not imported",
		rt.repoKey(), strings.TrimPrefix(strings.TrimPrefix(path, "blobs/"), "manifests/"), rt.upstream.name)}
}

// offlineTag resolves a tag of an offline upstream through the hint mirror
// import recorded. The hint is not evidence: the caller runs policy on the
// manifest it names exactly as on one fetched from upstream.
func (s *Server) offlineTag(ctx context.Context, rt route) (*fetchedManifest, error) {
	dg, err := s.cache.TagHint(ctx, rt.repoKey(), rt.ref)
	if err != nil {
		return nil, errOffline(rt, "manifests/"+rt.ref)
	}
	return s.manifestByDigest(ctx, rt, dg)
}
