package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/opencontainers/go-digest"
)

// FetchFunc fetches the blob from upstream. size is the Content-Length (-1
// if unknown). It runs detached from the request that triggered it, so it
// must bound itself (client timeouts); ctx is cancelled only by Cache.Close.
type FetchFunc func(ctx context.Context) (body io.ReadCloser, size int64, err error)

// Blob is a cached or in-flight blob.
type Blob interface {
	// Size is the known size: from the cache, the expected size, or the
	// upstream Content-Length; -1 if none is known.
	Size() int64
	// Cached is true if the blob was served from the committed cache (a hit).
	Cached() bool
	// NewReader reads from offset. For an in-flight download it follows the
	// download as it progresses. It never returns the final byte before the
	// whole blob has been verified (digest and size); on a mismatch or a
	// truncated upstream body Read returns an error wrapping
	// ErrDigestMismatch / ErrSizeMismatch / the upstream error, so the HTTP
	// layer can abort the response instead of completing it with bad bytes.
	// For a committed blob on the filesystem driver the reader is the
	// *os.File itself (sendfile-friendly). If a committed blob was evicted
	// since Blob returned, the error wraps ErrNotFound: call Blob again.
	NewReader(ctx context.Context, offset int64) (io.ReadCloser, error)
}

// Blob returns the blob named by dgst. A hit returns the committed blob (not
// re-hashed). A miss joins the download of dgst in flight or starts one:
// fetch is called once per digest however many callers ask at the same time.
// The download is detached from ctx (it completes and is cached even if this
// caller goes away), streams upstream → spool file while hashing, and is
// committed to the driver only if digest and size match. expectedSize -1
// means unknown. Blob returns once the fetch has answered (so Size is known),
// with the fetch's error if it failed.
func (c *Cache) Blob(ctx context.Context, dgst digest.Digest, expectedSize int64, fetch FetchFunc) (Blob, error) {
	if err := validateDigest("blob", dgst); err != nil {
		return nil, err
	}
	if fetch == nil {
		return nil, fmt.Errorf("blob %s: nil fetch function", dgst)
	}
	if err := ctx.Err(); err != nil { // do not start a download nobody waits for
		return nil, fmt.Errorf("blob %s: %w", dgst, context.Cause(ctx))
	}
	if expectedSize < 0 {
		expectedSize = -1
	}
	k := key{kindBlob, dgst}
	e, hit, err := c.lookup(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", dgst, err)
	}
	if hit {
		return c.hit(k, e.size, expectedSize)
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("blob %s: %w", dgst, ErrClosed)
	}
	if e := c.ix.get(k); e != nil { // committed while we looked in the driver
		c.ix.touch(e)
		size := e.size
		c.mu.Unlock()
		return c.hit(k, size, expectedSize)
	}
	dl, joined := c.inflight[dgst]
	if joined && dl.failed() {
		// Failed, but not yet out of the map: failures are not
		// remembered, so this caller starts afresh.
		joined = false
	}
	if !joined {
		dl = newDownload(dgst, expectedSize)
		c.inflight[dgst] = dl
		c.pending[k]++
		c.wg.Add(1)
		go c.runDownload(ctx, dl, fetch)
	}
	// Counted while c.mu is held, so the download cannot finish and drop
	// the spool before this handle exists.
	dl.mu.Lock()
	dl.handles++
	dl.mu.Unlock()
	c.mu.Unlock()

	c.m.misses.WithLabelValues(kindBlob.String()).Inc()
	if joined {
		c.m.coalesced.Inc()
	}
	select {
	case <-dl.started:
	case <-ctx.Done():
		dl.releaseHandle()
		return nil, fmt.Errorf("blob %s: waiting for upstream: %w", dgst, context.Cause(ctx))
	}
	if dl.startErr != nil {
		dl.releaseHandle()
		return nil, dl.startErr
	}
	known := expectedSize
	if known < 0 {
		known = dl.size
	}
	b := &inflightBlob{c: c, dl: dl, known: known}
	runtime.AddCleanup(b, (*download).releaseHandle, dl)
	return b, nil
}

func (c *Cache) hit(k key, size, expectedSize int64) (Blob, error) {
	if expectedSize >= 0 && size != expectedSize {
		return nil, fmt.Errorf("blob %s: cached blob has %d bytes, expected %d: %w", k.dgst, size, expectedSize, ErrSizeMismatch)
	}
	c.m.hits.WithLabelValues(kindBlob.String()).Inc()
	return &storedBlob{c: c, k: k, size: size, cached: true}, nil
}

// storedBlob is a committed blob.
type storedBlob struct {
	c      *Cache
	k      key
	size   int64
	cached bool
}

func (b *storedBlob) Size() int64  { return b.size }
func (b *storedBlob) Cached() bool { return b.cached }

func (b *storedBlob) NewReader(ctx context.Context, offset int64) (io.ReadCloser, error) {
	return b.c.openBlob(ctx, b.k, b.size, offset)
}

// openBlob returns the driver's own reader, unwrapped, so that the HTTP
// layer's io.Copy sees an *os.File on the filesystem driver.
func (c *Cache) openBlob(ctx context.Context, k key, size, offset int64) (io.ReadCloser, error) {
	if offset < 0 || offset > size {
		return nil, fmt.Errorf("read %s at %d: blob has %d bytes: %w", k, offset, size, ErrInvalidOffset)
	}
	rc, err := c.d.Reader(ctx, k.dataPath(), offset)
	if isPathNotFound(err) {
		c.forget(k)
		return nil, fmt.Errorf("read %s: %w", k, errors.Join(ErrNotFound, err))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	return rc, nil
}

// inflightBlob is a handle on a download in flight.
type inflightBlob struct {
	c     *Cache
	dl    *download
	known int64
}

func (b *inflightBlob) Size() int64  { return b.known }
func (b *inflightBlob) Cached() bool { return false }

func (b *inflightBlob) NewReader(ctx context.Context, offset int64) (io.ReadCloser, error) {
	dl := b.dl
	if offset < 0 || (b.known >= 0 && offset > b.known) {
		return nil, fmt.Errorf("read blob %s at %d: blob has %d bytes: %w", dl.dgst, offset, b.known, ErrInvalidOffset)
	}
	dl.mu.Lock()
	switch {
	case dl.finished && dl.err != nil:
		err := dl.err
		dl.mu.Unlock()
		return nil, err
	case dl.committed:
		size := dl.written
		dl.mu.Unlock()
		if b.known >= 0 && size != b.known {
			return nil, fmt.Errorf("read blob %s: blob has %d bytes, expected %d: %w", dl.dgst, size, b.known, ErrSizeMismatch)
		}
		return b.c.openBlob(ctx, key{kindBlob, dl.dgst}, size, offset)
	case dl.spoolClosed:
		// Unreachable while this handle is alive; kept as a clear error
		// rather than a read from a closed file.
		dl.mu.Unlock()
		return nil, fmt.Errorf("read blob %s: download gone: %w", dl.dgst, ErrNotFound)
	}
	dl.refs++
	dl.readers++
	dl.mu.Unlock()
	b.c.m.inflightReaders.Inc()
	// Keep the handle reachable until the reader holds its own reference.
	runtime.KeepAlive(b)
	return &tailReader{c: b.c, dl: dl, ctx: ctx, pos: offset, known: b.known}, nil
}
