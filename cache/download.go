package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
)

// copyBufferSize is the chunk in which downloads are spooled and commits
// copied; it bounds per-download memory whatever the blob size.
const copyBufferSize = 256 << 10

// download is one upstream fetch of a blob, shared by every caller that
// asks for the digest while it runs. Bytes go upstream → spool file (while
// hashing); followers tail the spool file; the final byte is released only
// after the digest and size were verified.
type download struct {
	dgst     digest.Digest
	expected int64 // the first caller's expected size, -1 if unknown

	started  chan struct{} // closed once fetch returned (or failed)
	size     int64         // best known size (expected, else Content-Length, else -1); set before started
	startErr error         // set before started

	spool *os.File // without a name (O_TMPFILE, or unlinked at creation); lives while referenced
	// spoolLinkable: the spool can be linked into a filesystem cache;
	// spoolName: a name left to remove when it closes ("": none).
	spoolLinkable bool
	spoolName     string

	mu        sync.Mutex
	written   int64
	finished  bool  // body fully read and verified, or failed
	err       error // why it failed
	committed bool
	notify    chan struct{} // closed on progress; made lazily by waiters
	// refs keeps the spool open: the downloader holds one until its commit
	// is done, every open reader holds one.
	refs int
	// handles counts Blob handles that may still open readers. They only
	// keep the spool open when a verified blob could not be committed
	// (larger than MaxSize, driver error): then the spool is the only copy.
	handles     int
	spoolClosed bool
	// readers counts open readers; cancel stops the detached download
	// (cancelWhenAbandoned).
	readers int
	cancel  context.CancelCauseFunc
}

// ErrAbandoned is why a download of unknown size stops when its last reader
// closes: nothing bounds it but maxBlobBytes, and nobody waits for it.
var ErrAbandoned = errors.New("download of unknown size abandoned by its last client")

// cancelWhenAbandonedLocked stops a download whose size is unknown once its
// last reader is gone. A download of known size runs on: it is bounded by
// that size, and finishing it caches the blob for the next client.
func (dl *download) cancelWhenAbandonedLocked() {
	if dl.readers == 0 && !dl.finished && dl.size < 0 && dl.cancel != nil {
		dl.cancel(ErrAbandoned)
	}
}

// failed reports whether the download already ended in an error.
func (dl *download) failed() bool {
	select {
	case <-dl.started:
		if dl.startErr != nil {
			return true
		}
	default:
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.finished && dl.err != nil
}

func newDownload(dgst digest.Digest, expected int64) *download {
	return &download{dgst: dgst, expected: expected, size: -1, started: make(chan struct{}), refs: 1}
}

// publish makes written bytes visible to followers.
func (dl *download) publish(n int64) {
	dl.mu.Lock()
	dl.written = n
	if dl.notify != nil {
		close(dl.notify)
		dl.notify = nil
	}
	dl.mu.Unlock()
}

// finish records the outcome and wakes every follower.
func (dl *download) finish(err error) {
	dl.mu.Lock()
	dl.finished = true
	dl.err = err
	if dl.notify != nil {
		close(dl.notify)
		dl.notify = nil
	}
	dl.mu.Unlock()
}

// waitChanLocked returns a channel closed at the next progress.
func (dl *download) waitChanLocked() chan struct{} {
	if dl.notify == nil {
		dl.notify = make(chan struct{})
	}
	return dl.notify
}

func (dl *download) releaseRef() {
	dl.mu.Lock()
	dl.refs--
	dl.maybeCloseSpoolLocked()
	dl.mu.Unlock()
}

func (dl *download) releaseHandle() {
	dl.mu.Lock()
	dl.handles--
	dl.maybeCloseSpoolLocked()
	dl.mu.Unlock()
}

func (dl *download) maybeCloseSpoolLocked() {
	if dl.spool == nil || dl.spoolClosed || dl.refs > 0 {
		return
	}
	if dl.err == nil && !dl.committed && dl.handles > 0 {
		return
	}
	dl.spoolClosed = true
	_ = dl.spool.Close()
	if dl.spoolName != "" {
		_ = os.Remove(dl.spoolName)
	}
}

// runDownload fetches, verifies and commits one blob. It runs detached from
// the caller that started it, bounded by the cache's lifetime and the fetch's
// own timeouts.
func (c *Cache) runDownload(callerCtx context.Context, dl *download, fetch FetchFunc) {
	defer c.wg.Done()
	ctx, cancelCause := context.WithCancelCause(context.WithoutCancel(callerCtx))
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	dl.cancel = cancelCause // set before started is closed: readers see it
	stop := context.AfterFunc(c.life, cancel)
	defer stop()

	c.m.inflight.Inc()
	defer c.m.inflight.Dec()

	k := key{kindBlob, dl.dgst}
	log := c.log.With(zap.Stringer("digest", dl.dgst))

	release, err := c.clusterTurn(ctx, dl)
	if errors.Is(err, errAdopted) {
		return
	}
	defer release()
	if err == nil {
		err = c.fetchAndVerify(ctx, dl, fetch)
	}
	if err != nil {
		c.mu.Lock()
		if c.inflight[dl.dgst] == dl {
			delete(c.inflight, dl.dgst)
		}
		c.endWriteLocked(k)
		c.mu.Unlock()
		dl.finish(err)
		c.countFailure(log, err)
		dl.releaseRef()
		return
	}

	committed := false
	switch cerr := c.commitBlob(ctx, dl); {
	case cerr == nil:
		committed = true
	case errors.Is(cerr, ErrTooLarge):
		log.Info("verified blob served but not cached", zap.Error(cerr))
	default:
		c.m.commitErrors.Inc()
		log.Error("verified blob served but not cached", zap.Error(cerr))
	}

	c.mu.Lock()
	if c.inflight[dl.dgst] == dl {
		delete(c.inflight, dl.dgst)
	}
	if committed {
		c.ix.add(k, dl.written)
		c.updateGaugesLocked()
	}
	c.endWriteLocked(k)
	c.mu.Unlock()

	dl.mu.Lock()
	dl.committed = committed
	dl.mu.Unlock()
	dl.releaseRef()
	if committed {
		log.Debug("blob committed", zap.Int64("size", dl.written))
		c.evictIfNeeded(ctx)
	}
}

func (c *Cache) countFailure(log *zap.Logger, err error) {
	switch {
	case errors.Is(err, ErrDigestMismatch):
		c.m.digestMismatches.WithLabelValues(kindBlob.String()).Inc()
		log.Warn("blob refused: upstream bytes do not match digest", zap.Error(err))
	case errors.Is(err, ErrSizeMismatch):
		c.m.sizeMismatches.Inc()
		log.Warn("blob refused: upstream length does not match", zap.Error(err))
	default:
		c.m.fetchErrors.Inc()
		log.Warn("blob download failed", zap.Error(err))
	}
}

// fetchAndVerify calls fetch, streams the body into the spool while hashing,
// and finishes dl successfully only if digest and size match. On error the
// caller finishes dl.
func (c *Cache) fetchAndVerify(ctx context.Context, dl *download, fetch FetchFunc) error {
	start := func(size int64, err error) error {
		dl.size, dl.startErr = size, err
		close(dl.started)
		return err
	}
	c.m.fetches.Inc()
	body, clen, err := fetch(ctx)
	if err != nil {
		return start(-1, fmt.Errorf("fetch blob %s: %w", dl.dgst, err))
	}
	defer body.Close()
	if clen < -1 {
		clen = -1
	}
	size := dl.expected
	switch {
	case size < 0:
		size = clen
	case clen >= 0 && clen != size:
		return start(-1, fmt.Errorf("fetch blob %s: upstream Content-Length %d, expected %d: %w", dl.dgst, clen, size, ErrSizeMismatch))
	}
	spool, linkable, named, err := createSpool(c.spool)
	if err != nil {
		return start(-1, fmt.Errorf("fetch blob %s: create spool file: %w", dl.dgst, err))
	}
	dl.spool, dl.spoolLinkable, dl.spoolName = spool, linkable, named
	start(size, nil)

	hp := newHashPipe(dl.dgst.Algorithm().Hash())
	defer hp.stop()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("fetch blob %s: after %d bytes: %w", dl.dgst, n, context.Cause(ctx))
		}
		buf, err := hp.buffer(ctx)
		if err != nil {
			return fmt.Errorf("fetch blob %s: after %d bytes: %w", dl.dgst, n, err)
		}
		k, rerr := body.Read(buf)
		if k > 0 {
			if size >= 0 && n+int64(k) > size {
				return fmt.Errorf("fetch blob %s: upstream sent more than %d bytes: %w", dl.dgst, size, ErrSizeMismatch)
			}
			if _, werr := spool.Write(buf[:k]); werr != nil {
				return fmt.Errorf("fetch blob %s: write spool: %w", dl.dgst, werr)
			}
			// Followers may read these bytes before they are hashed: only
			// the final byte is held back until the digest is checked.
			hp.hash(buf[:k])
			n += int64(k)
			dl.publish(n)
		} else {
			hp.recycle(buf)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("fetch blob %s: read upstream body after %d bytes: %w", dl.dgst, n, rerr)
		}
	}
	h := hp.sum()
	if size >= 0 && n != size {
		return fmt.Errorf("fetch blob %s: upstream body ended after %d of %d bytes: %w", dl.dgst, n, size, ErrSizeMismatch)
	}
	if got := digest.NewDigest(dl.dgst.Algorithm(), h); got != dl.dgst {
		return fmt.Errorf("fetch blob %s: upstream bytes hash to %s: %w", dl.dgst, got, ErrDigestMismatch)
	}
	dl.finish(nil)
	return nil
}

// tailReader reads a download's spool as it grows (Read), or hands it to a
// writer range by range (WriteTo).
type tailReader struct {
	c     *Cache
	dl    *download
	ctx   context.Context
	pos   int64
	known int64 // size this reader's caller expects (or the download's), -1 if unknown
	done  bool
}

func (r *tailReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, fmt.Errorf("read blob %s: reader closed", r.dl.dgst)
	}
	if len(p) == 0 {
		return 0, nil
	}
	limit, err := r.next()
	if err != nil {
		return 0, err
	}
	want := min(int64(len(p)), limit-r.pos)
	n, err := r.dl.spool.ReadAt(p[:want], r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read blob %s: spool: %w", r.dl.dgst, err)
	}
	return n, nil
}

// next waits until bytes past r.pos may be handed out and returns where
// they end (exclusive); io.EOF once the verified blob has been read whole.
// The final byte is held back until the digest and size are verified.
func (r *tailReader) next() (int64, error) {
	dl := r.dl
	for {
		dl.mu.Lock()
		var limit int64
		switch {
		case dl.finished && dl.err != nil:
			err := dl.err
			dl.mu.Unlock()
			return 0, err
		case dl.finished:
			limit = dl.written
			if r.known >= 0 && limit != r.known {
				dl.mu.Unlock()
				return 0, fmt.Errorf("read blob %s: blob has %d bytes, expected %d: %w", dl.dgst, limit, r.known, ErrSizeMismatch)
			}
			if r.pos > limit {
				dl.mu.Unlock()
				return 0, fmt.Errorf("read blob %s at %d: blob has %d bytes: %w", dl.dgst, r.pos, limit, ErrInvalidOffset)
			}
		case r.known >= 0:
			// The final byte (known-1) waits for verification.
			limit = min(dl.written, r.known-1)
		default:
			// Size unknown: any byte could be the last, so hold one back.
			limit = dl.written - 1
		}
		if r.pos < limit {
			dl.mu.Unlock()
			return limit, nil
		}
		if dl.finished {
			dl.mu.Unlock()
			return 0, io.EOF
		}
		ch := dl.waitChanLocked()
		dl.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, fmt.Errorf("read blob %s: %w", dl.dgst, context.Cause(r.ctx))
		}
	}
}

// WriteTo writes the rest of the blob to w as the download progresses. When
// w can read from a file (net/http's response over TCP: sendfile), each
// range of the spool that may be handed out goes to the socket through the
// kernel instead of being read back into user space; otherwise it is copied
// in copyBufferSize chunks. The same bytes are released as by Read.
func (r *tailReader) WriteTo(w io.Writer) (int64, error) {
	if r.done {
		return 0, fmt.Errorf("read blob %s: reader closed", r.dl.dgst)
	}
	rf, ok := w.(io.ReaderFrom)
	var f *os.File
	if ok {
		f = r.dl.reopenSpool(r.pos)
	}
	if f == nil {
		return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, make([]byte, copyBufferSize))
	}
	defer f.Close()
	var written int64
	for {
		limit, err := r.next()
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, err
		}
		want := limit - r.pos
		n, err := rf.ReadFrom(&io.LimitedReader{R: f, N: want})
		r.pos += n
		written += n
		if err == nil && n < want {
			err = io.ErrUnexpectedEOF // the spool holds these bytes: never expected
		}
		if err != nil {
			return written, fmt.Errorf("write blob %s at %d: %w", r.dl.dgst, r.pos, err)
		}
	}
}

func (r *tailReader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	r.c.m.inflightReaders.Dec()
	r.dl.mu.Lock()
	r.dl.readers--
	r.dl.cancelWhenAbandonedLocked()
	r.dl.mu.Unlock()
	r.dl.releaseRef()
	return nil
}
