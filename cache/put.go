package cache

import (
	"context"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
)

// PutBlob stores a blob read from src, for content that arrives from
// somewhere other than an upstream fetch (a mirror import). src is hashed
// while it is written to a staging object, and the blob becomes visible only
// if it hashes to dgst and has size bytes. A blob already cached is left as
// it is (src is not read) and added is false.
func (c *Cache) PutBlob(ctx context.Context, dgst digest.Digest, size int64, src io.Reader) (added bool, err error) {
	if err := validateDigest("put blob", dgst); err != nil {
		return false, err
	}
	k := key{kindBlob, dgst}
	if _, hit, err := c.lookup(ctx, k); err != nil {
		return false, fmt.Errorf("put blob %s: %w", dgst, err)
	} else if hit {
		return false, nil
	}
	if c.maxSize > 0 && size > c.maxSize {
		return false, fmt.Errorf("put blob %s: %d bytes exceed the cache size %d: %w", dgst, size, c.maxSize, ErrTooLarge)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, fmt.Errorf("put blob %s: %w", dgst, ErrClosed)
	}
	c.pending[k]++
	c.mu.Unlock()

	v := &verifyingReader{r: src, h: dgst.Algorithm().Hash(), dgst: dgst, want: size}
	err = c.writeObject(ctx, k, k.dataPath(), v)

	c.mu.Lock()
	if err == nil {
		c.ix.add(k, v.n)
		c.updateGaugesLocked()
	}
	c.endWriteLocked(k)
	c.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("put blob %s: %w", dgst, err)
	}
	c.evictIfNeeded(ctx)
	return true, nil
}

// verifyingReader hashes what passes through it and turns the final EOF
// into an error when the digest or size is wrong, so that writeObject never
// moves bad bytes into place.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	dgst digest.Digest
	want int64
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.want >= 0 && v.n > v.want {
		return n, fmt.Errorf("more than the expected %d bytes: %w", v.want, ErrSizeMismatch)
	}
	if err == io.EOF {
		if v.want >= 0 && v.n != v.want {
			return n, fmt.Errorf("%d bytes, expected %d: %w", v.n, v.want, ErrSizeMismatch)
		}
		if got := digest.NewDigest(v.dgst.Algorithm(), v.h); got != v.dgst {
			return n, fmt.Errorf("content hashes to %s: %w", got, ErrDigestMismatch)
		}
	}
	return n, err
}
