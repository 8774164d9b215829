package cache

import "errors"

// Sentinel errors. Every error the cache returns wraps one of these (or a
// driver/upstream error) together with what was being done, so callers test
// with errors.Is and humans read the context.
var (
	// ErrNotFound: the object is not in the committed cache.
	ErrNotFound = errors.New("not found in cache")
	// ErrDigestMismatch: the bytes do not hash to the digest they were asked for.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: the byte count differs from the expected size or the
	// upstream Content-Length (truncated or overlong body included).
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrTooLarge: a manifest above MaxManifestSize, or an object that could
	// never fit in the cache's MaxSize.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidOffset: a reader was asked to start beyond the end of a blob.
	ErrInvalidOffset = errors.New("invalid offset")
	// ErrClosed: the cache was closed.
	ErrClosed = errors.New("cache closed")
)
