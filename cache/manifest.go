package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
)

const maxMediaTypeLen = 255

// PutManifest stores a manifest and its media type after checking that body
// hashes to dgst. Bodies above MaxManifestSize are refused with ErrTooLarge.
// Storing a manifest that is already cached is a no-op.
func (c *Cache) PutManifest(ctx context.Context, dgst digest.Digest, mediaType string, body []byte) error {
	if err := validateDigest("put manifest", dgst); err != nil {
		return err
	}
	if len(body) > MaxManifestSize {
		return fmt.Errorf("put manifest %s: %d bytes, limit %d: %w", dgst, len(body), MaxManifestSize, ErrTooLarge)
	}
	if c.maxSize > 0 && int64(len(body)) > c.maxSize {
		return fmt.Errorf("put manifest %s: %d bytes exceed the cache size %d: %w", dgst, len(body), c.maxSize, ErrTooLarge)
	}
	if len(mediaType) > maxMediaTypeLen || strings.ContainsFunc(mediaType, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsControl(r) }) {
		return fmt.Errorf("put manifest %s: invalid media type %q", dgst, mediaType)
	}
	if got := dgst.Algorithm().FromBytes(body); got != dgst {
		c.m.digestMismatches.WithLabelValues(kindManifest.String()).Inc()
		return fmt.Errorf("put manifest %s: body hashes to %s: %w", dgst, got, ErrDigestMismatch)
	}
	k := key{kindManifest, dgst}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("put manifest %s: %w", dgst, ErrClosed)
	}
	if e := c.ix.get(k); e != nil {
		c.ix.touch(e)
		if e.knownType && e.mediaType == mediaType && e.memElem == nil {
			c.ix.mem.keep(e, bytes.Clone(body))
		}
		c.mu.Unlock()
		return nil
	}
	c.pending[k]++
	c.mu.Unlock()

	// The media type goes first: once data is visible, it must be complete.
	err := c.writeObject(ctx, k, k.mediaTypePath(), strings.NewReader(mediaType))
	if err == nil {
		err = c.writeObject(ctx, k, k.dataPath(), bytes.NewReader(body))
	}

	c.mu.Lock()
	if err == nil {
		e, _ := c.ix.add(k, int64(len(body)))
		e.mediaType, e.knownType = mediaType, true
		c.ix.mem.keep(e, bytes.Clone(body)) // the caller keeps its slice
		c.updateGaugesLocked()
	}
	c.endWriteLocked(k)
	c.mu.Unlock()
	if err != nil {
		c.m.commitErrors.Inc()
		return fmt.Errorf("put manifest %s: %w", dgst, err)
	}
	c.evictIfNeeded(ctx)
	return nil
}

// GetManifest returns a cached manifest and its media type, or an error
// wrapping ErrNotFound. The body is shared: callers must not modify it.
// Manifests are small and are the root of everything served, so their digest
// is checked on every read from storage; a corrupted one is evicted and
// reported as ErrDigestMismatch. Bodies checked once (read or put) are then
// answered from memory within Options.ManifestMemory.
func (c *Cache) GetManifest(ctx context.Context, dgst digest.Digest) (string, []byte, error) {
	k := key{kindManifest, dgst}
	// Only valid digests are ever indexed, so a memory hit needs no check.
	if mt, body, ok := c.manifestFromMemory(k); ok {
		c.m.manifestMemoryHits.Inc()
		c.m.manifestHits.Inc()
		return mt, body, nil
	}
	if err := validateDigest("get manifest", dgst); err != nil {
		return "", nil, err
	}
	e, ok, err := c.lookup(ctx, k)
	if err != nil {
		return "", nil, fmt.Errorf("get manifest %s: %w", dgst, err)
	}
	if !ok {
		c.m.misses.WithLabelValues(kindManifest.String()).Inc()
		return "", nil, fmt.Errorf("get manifest %s: %w", dgst, ErrNotFound)
	}
	body, err := c.readSmall(ctx, k.dataPath(), MaxManifestSize)
	if err != nil {
		return "", nil, c.manifestReadError(k, err)
	}
	if got := dgst.Algorithm().FromBytes(body); got != dgst {
		c.m.digestMismatches.WithLabelValues(kindManifest.String()).Inc()
		c.log.Error("cached manifest corrupted; evicting it", zap.Stringer("digest", dgst), zap.Stringer("got", got))
		c.drop(ctx, k)
		return "", nil, fmt.Errorf("get manifest %s: stored bytes hash to %s: %w", dgst, got, ErrDigestMismatch)
	}
	mediaType := e.mediaType
	if !e.knownType {
		mt, err := c.readSmall(ctx, k.mediaTypePath(), maxMediaTypeLen)
		if err != nil {
			return "", nil, c.manifestReadError(k, err)
		}
		mediaType = string(mt)
	}
	c.mu.Lock()
	// Only if the entry read is still the committed one: an object evicted
	// and written again meanwhile is a new entry with its own reads.
	if cur := c.ix.get(k); cur != nil && cur.elem == e.elem {
		cur.mediaType, cur.knownType = mediaType, true
		c.ix.mem.keep(cur, body)
	}
	c.mu.Unlock()
	c.m.hits.WithLabelValues(kindManifest.String()).Inc()
	return mediaType, body, nil
}

// manifestFromMemory answers a committed manifest whose verified body is
// held in memory, marking it used.
func (c *Cache) manifestFromMemory(k key) (string, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.ix.get(k)
	if e == nil || !e.knownType {
		return "", nil, false
	}
	body, ok := c.ix.mem.get(e)
	if !ok {
		return "", nil, false
	}
	c.ix.touch(e)
	return e.mediaType, body, true
}

func (c *Cache) manifestReadError(k key, err error) error {
	if errors.Is(err, ErrNotFound) {
		c.forget(k)
		c.m.misses.WithLabelValues(kindManifest.String()).Inc()
	}
	return fmt.Errorf("get manifest %s: %w", k.dgst, err)
}

// readSmall reads a whole small object, refusing anything above limit.
func (c *Cache) readSmall(ctx context.Context, path string, limit int64) ([]byte, error) {
	rc, err := c.d.Reader(ctx, path, 0)
	if isPathNotFound(err) {
		return nil, fmt.Errorf("read %s: %w", path, errors.Join(ErrNotFound, err))
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: more than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return b, nil
}

// drop removes one committed object from the index and the driver.
func (c *Cache) drop(ctx context.Context, k key) {
	c.mu.Lock()
	e := c.ix.get(k)
	ok := e != nil && c.unindexLocked(e)
	c.mu.Unlock()
	if !ok {
		return
	}
	if err := c.deleteUnindexed(ctx, k); err != nil {
		c.log.Warn("object not deleted from storage", zap.Stringer("object", k), zap.Error(err))
	}
}
