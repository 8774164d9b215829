package cache

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap"
)

// beginWrite marks k as being written: from now until endWriteLocked it is
// neither evicted nor adopted from the driver by lookups.
func (c *Cache) beginWrite(k key) {
	c.mu.Lock()
	c.pending[k]++
	c.mu.Unlock()
}

func (c *Cache) endWriteLocked(k key) {
	if c.pending[k]--; c.pending[k] <= 0 {
		delete(c.pending, k)
	}
}

// waitEvicted blocks while an eviction of k that started before k was marked
// pending is still deleting it, so a fresh commit is not deleted under us.
func (c *Cache) waitEvicted(ctx context.Context, k key) error {
	c.mu.Lock()
	ch := c.evicting[k]
	c.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for eviction of %s: %w", k, context.Cause(ctx))
	}
}

// writeObject stores src at final: driver.Writer to a fresh staging path,
// Commit, then Move into place, so final only ever appears complete. k must
// be marked pending by the caller.
func (c *Cache) writeObject(ctx context.Context, k key, final string, src io.Reader) (err error) {
	staging, err := stagingPath()
	if err != nil {
		return err
	}
	w, err := c.d.Writer(ctx, staging, false)
	if err != nil {
		return fmt.Errorf("open staging object %s: %w", staging, err)
	}
	defer func() {
		if err != nil {
			if derr := c.d.Delete(context.WithoutCancel(ctx), staging); derr != nil && !isPathNotFound(derr) {
				c.log.Warn("staging object left behind for the next sweep", zap.String("path", staging), zap.Error(derr))
			}
		}
	}()
	buf := make([]byte, copyBufferSize)
	if _, err := io.CopyBuffer(w, src, buf); err != nil {
		_ = w.Cancel(ctx)
		return fmt.Errorf("write staging object %s: %w", staging, err)
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Cancel(ctx)
		return fmt.Errorf("commit staging object %s: %w", staging, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close staging object %s: %w", staging, err)
	}
	if err := c.waitEvicted(ctx, k); err != nil {
		return err
	}
	if err := c.d.Move(ctx, staging, final); err != nil {
		return fmt.Errorf("move %s to %s: %w", staging, final, err)
	}
	return nil
}

// commitBlob copies a verified download from its spool into the driver.
func (c *Cache) commitBlob(ctx context.Context, dl *download) error {
	k := key{kindBlob, dl.dgst}
	if c.maxSize > 0 && dl.written > c.maxSize {
		return fmt.Errorf("commit %s: %d bytes exceed the cache size %d: %w", k, dl.written, c.maxSize, ErrTooLarge)
	}
	if err := c.writeObject(ctx, k, k.dataPath(), io.NewSectionReader(dl.spool, 0, dl.written)); err != nil {
		return fmt.Errorf("commit %s: %w", k, err)
	}
	return nil
}
