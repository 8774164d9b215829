package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/cache"
)

// serveBlob answers GET/HEAD /v2/<name>/blobs/<digest>: decide whether the
// blob may be served, answer a HEAD without a download when possible, open
// the blob (cache, or one shared upstream download), then write it.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo) error {
	dg, size, err := s.decideBlob(r.Context(), rt, info)
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead && s.headBlob(r.Context(), w, dg, size, info) {
		return nil
	}
	open := func(ctx context.Context) (cache.Blob, error) { return s.openBlob(ctx, rt, dg, size, info) }
	blob, err := open(r.Context())
	if err != nil {
		return err
	}
	return s.writeBlob(w, r, rt, dg, blob, open)
}

// decideBlob is the authorization of a blob request: a blob is served only
// while an approved manifest of the same repository references it. size is
// the approved descriptor's size, or -1 when no descriptor gave one.
func (s *Server) decideBlob(ctx context.Context, rt route, info *requestInfo) (digest.Digest, int64, error) {
	dg, err := digest.Parse(rt.ref)
	if err != nil {
		return "", 0, errDigestInvalid(fmt.Sprintf("trustproxy: invalid blob digest %q: %v", rt.ref, err))
	}
	g, size := s.approvals.covering(ctx, rt.repoKey(), dg, s.policy)
	if g == nil {
		info.decision = "deny"
		return "", 0, errDenied(fmt.Sprintf("trustproxy: blob %s@%s denied: no approved manifest of %s references it (pull by an approved tag or digest first)",
			rt.repoKey(), dg, rt.repoKey()))
	}
	info.decision = g.label()
	return dg, size, nil
}

// headBlob answers a HEAD from what is known without starting a download:
// the cache, or the approved descriptor's size. It reports whether it did.
func (s *Server) headBlob(ctx context.Context, w http.ResponseWriter, dg digest.Digest, size int64, info *requestInfo) bool {
	if n, err := s.cache.StatBlob(ctx, dg); err == nil {
		info.cache = "hit"
		writeBlobHeaders(w, dg, n)
		return true
	}
	if size >= 0 {
		info.cache = "miss"
		writeBlobHeaders(w, dg, size)
		return true
	}
	return false
}

// openBlob opens dg from the cache, or joins or starts its one upstream
// download (verified against dg as it streams).
func (s *Server) openBlob(ctx context.Context, rt route, dg digest.Digest, size int64, info *requestInfo) (cache.Blob, error) {
	blob, err := s.cache.Blob(ctx, dg, size, func(ctx context.Context) (io.ReadCloser, int64, error) {
		return s.fetchBlob(ctx, rt, dg, size, info)
	})
	if err != nil {
		var oe *ociError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", rt.repoKey(), dg, err))
	}
	if blob.Cached() {
		info.cache = "hit"
	} else {
		info.cache = "miss"
	}
	return blob, nil
}

func writeBlobHeaders(w http.ResponseWriter, dg digest.Digest, size int64) {
	setBlobHeaders(w.Header(), dg)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
}

func setBlobHeaders(h http.Header, dg digest.Digest) {
	h.Set("Docker-Content-Digest", dg.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Etag", `"`+dg.String()+`"`)
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// fetchBlob opens the blob's body on the upstream (after any redirects),
// bounded by the upstream's transfer bounds. It tells info which host served
// the bytes: the access log line of the request that started the download.
func (s *Server) fetchBlob(ctx context.Context, rt route, dg digest.Digest, size int64, info *requestInfo) (io.ReadCloser, int64, error) {
	b := rt.upstream.blobBounds
	ctx, cancel := context.WithTimeout(ctx, b.deadline)
	resp, err := s.upstreamDo(ctx, rt, http.MethodGet, "blobs/"+dg.String(), nil)
	if err != nil {
		cancel()
		return nil, 0, err
	}
	info.servedBy = resp.Request.URL.Host
	if resp.StatusCode != http.StatusOK {
		cancel()
		oe := upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"), "blob "+rt.repoKey()+"@"+dg.String())
		if oe.Code == "MANIFEST_UNKNOWN" {
			oe.Code = "BLOB_UNKNOWN"
		}
		drain(resp.Body)
		return nil, 0, oe
	}
	body, err := b.bound(ctx, cancel, resp, size)
	if err != nil {
		return nil, 0, errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", rt.repoKey(), dg, err))
	}
	return body, resp.ContentLength, nil
}
