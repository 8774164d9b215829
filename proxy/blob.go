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

// serveBlob answers GET/HEAD /v2/<name>/blobs/<digest>. A blob is served only
// while an approved manifest of the same repository references it.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo) error {
	dg, err := digest.Parse(rt.ref)
	if err != nil {
		return errDigestInvalid(fmt.Sprintf("trustproxy: invalid blob digest %q: %v", rt.ref, err))
	}
	g, size := s.approvals.covering(r.Context(), rt.repoKey(), dg, s.policy)
	if g == nil {
		info.decision = "deny"
		return errDenied(fmt.Sprintf("trustproxy: blob %s@%s denied: no approved manifest of %s references it (pull by an approved tag or digest first)",
			rt.repoKey(), dg, rt.repoKey()))
	}
	info.decision = "child-of:" + g.decision.Target
	ctx := r.Context()
	if r.Method == http.MethodHead {
		// A HEAD must not start a download: the cache or the approved
		// descriptor knows the size.
		if n, err := s.cache.StatBlob(ctx, dg); err == nil {
			info.cache = "hit"
			writeBlobHeaders(w, dg, n)
			return nil
		}
		if size >= 0 {
			info.cache = "miss"
			writeBlobHeaders(w, dg, size)
			return nil
		}
	}
	fetch := func(ctx context.Context) (io.ReadCloser, int64, error) {
		return s.fetchBlob(ctx, rt, dg, size, info)
	}
	blob, err := s.cache.Blob(ctx, dg, size, fetch)
	if err != nil {
		var oe *ociError
		if errors.As(err, &oe) {
			return oe
		}
		return errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", rt.repoKey(), dg, err))
	}
	if blob.Cached() {
		info.cache = "hit"
	} else {
		info.cache = "miss"
	}
	total := blob.Size()
	h := w.Header()
	setBlobHeaders(h, dg)
	start, length, partial, rerr := parseRange(rangeHeader(r, dg), total)
	if rerr != nil {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(total, 10))
		return &ociError{Status: http.StatusRequestedRangeNotSatisfiable, Code: "RANGE_INVALID",
			Message: fmt.Sprintf("trustproxy: Range %q selects no byte of the %d-byte blob %s", r.Header.Get("Range"), total, dg)}
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, total))
	}
	if total >= 0 {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return nil
	}
	rc, err := blob.NewReader(ctx, start)
	if errors.Is(err, cache.ErrNotFound) && blob.Cached() {
		// Evicted since the lookup (by another replica sharing the
		// storage): this request fetches it again rather than fail.
		if blob, err = s.cache.Blob(ctx, dg, size, fetch); err == nil {
			rc, err = blob.NewReader(ctx, start)
		}
	}
	if err != nil {
		return errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", rt.repoKey(), dg, err))
	}
	defer rc.Close()
	w.WriteHeader(status)
	var src io.Reader = rc
	if total >= 0 {
		src = io.LimitReader(rc, length)
	}
	var n int64
	if blob.Cached() {
		n, err = io.Copy(w, src) // the driver's *os.File: sendfile
	} else {
		// Following a download: net/http's fallback copy reads 32 KiB at
		// a time; large reads cut the per-byte cost of the 50-client case
		// by more than half (bench/README.md).
		buf := copyBuffers.Get().(*[]byte)
		n, err = io.CopyBuffer(struct{ io.Writer }{w}, src, *buf)
		copyBuffers.Put(buf)
	}
	if err == nil && total >= 0 && n != length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away
		}
		// Headers are out: the only honest thing left is to break the
		// response, so the client never takes bad or short bytes as a blob.
		s.log.Sugar().Warnw("aborting blob response", "repository", rt.repoKey(), "digest", dg.String(), "sent", n, "error", err)
		panic(http.ErrAbortHandler)
	}
	return nil
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
