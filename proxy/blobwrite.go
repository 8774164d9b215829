package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/cache"
)

// writeBlob writes an approved, opened blob: the Range asked for (206), or
// all of it; headers only for a HEAD. reopen opens it again when it was
// evicted between the lookup and the read.
func (s *Server) writeBlob(w http.ResponseWriter, r *http.Request, rt route, dg digest.Digest, blob cache.Blob,
	reopen func(context.Context) (cache.Blob, error)) error {
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
	ctx := r.Context()
	rc, err := blob.NewReader(ctx, start)
	if errors.Is(err, cache.ErrNotFound) && blob.Cached() {
		// Evicted since the lookup (by another replica sharing the
		// storage): this request fetches it again rather than fail.
		if blob, err = reopen(ctx); err == nil {
			rc, err = blob.NewReader(ctx, start)
		}
	}
	if err != nil {
		return errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", rt.repoKey(), dg, err))
	}
	defer rc.Close()
	w.WriteHeader(status)
	// A follower of a download over plain TCP has the kernel send the
	// spool (sendfile); over TLS net/http would copy 32 KiB at a time.
	follow := !blob.Cached() && r.TLS == nil && (total < 0 || start+length == total)
	n, err := copyBlob(w, rc, blob.Cached(), follow, total, length)
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

// copyBlob copies length bytes (all when the size is unknown, total < 0)
// from rc to w, and fails on a short copy. follow: rc follows a download to
// its end and hands it to w itself (io.WriterTo: sendfile from the spool).
func copyBlob(w io.Writer, rc io.Reader, cached, follow bool, total, length int64) (int64, error) {
	src := rc
	if total >= 0 {
		src = io.LimitReader(rc, length)
	}
	var n int64
	var err error
	wt, canFollow := rc.(io.WriterTo)
	switch {
	case cached:
		n, err = io.Copy(w, src) // the driver's *os.File: sendfile
	case follow && canFollow:
		n, err = wt.WriteTo(w)
	default:
		// Following a download through user space: net/http's fallback
		// copy reads 32 KiB at a time; large reads cut the per-byte cost
		// of the 50-client case by more than half (bench/README.md).
		buf := copyBuffers.Get().(*[]byte)
		n, err = io.CopyBuffer(struct{ io.Writer }{w}, src, *buf)
		copyBuffers.Put(buf)
	}
	if err == nil && total >= 0 && n != length {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
