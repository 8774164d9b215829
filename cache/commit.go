package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
func (c *Cache) writeObject(ctx context.Context, k key, final string, src io.Reader) error {
	return c.stageAndMove(ctx, final, src, func(ctx context.Context) error { return c.waitEvicted(ctx, k) })
}

// writeStaging writes src to a staging object with one driver FileWriter.
func (c *Cache) writeStaging(ctx context.Context, staging string, src io.Reader, appendTo bool, buf []byte) error {
	w, err := c.d.Writer(ctx, staging, appendTo)
	if err != nil {
		return fmt.Errorf("open staging object %s: %w", staging, err)
	}
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
	return nil
}

// writeAppending writes src as a series of committed appends. distribution's
// inmemory FileWriter reallocates its whole buffer on every Write, so one
// long write is quadratic (a 64 MiB blob took 5 s and allocated 8.7 GB);
// each committed append (one Write each) is stored in amortized linear time.
func (c *Cache) writeAppending(ctx context.Context, staging string, src io.Reader, buf []byte) error {
	for i := 0; ; i++ {
		part := &io.LimitedReader{R: src, N: copyBufferSize}
		if err := c.writeStaging(ctx, staging, part, i > 0, buf); err != nil {
			return err
		}
		if part.N > 0 { // src ended inside this chunk
			return nil
		}
	}
}

// commitBlob puts a verified download into the driver: its spool linked
// into place where it can be (linkBlob), else copied.
func (c *Cache) commitBlob(ctx context.Context, dl *download) error {
	k := key{kindBlob, dl.dgst}
	if c.maxSize > 0 && dl.written > c.maxSize {
		return fmt.Errorf("commit %s: %d bytes exceed the cache size %d: %w", k, dl.written, c.maxSize, ErrTooLarge)
	}
	if c.fsRoot != "" && dl.spoolLinkable && c.d.Name() == "filesystem" {
		err := c.linkBlob(ctx, k, dl)
		if err == nil {
			return nil
		}
		c.log.Debug("spool not linked into the cache; copying it", zap.Stringer("object", k), zap.Error(err))
	}
	if err := c.writeObject(ctx, k, k.dataPath(), io.NewSectionReader(dl.spool, 0, dl.written)); err != nil {
		return fmt.Errorf("commit %s: %w", k, err)
	}
	return nil
}

// linkBlob commits a verified spool without copying it: synced (as the
// filesystem driver's Commit does), linked under a staging name inside the
// driver's root, then moved into place like every other object. It fails,
// leaving nothing behind, where the spool is on another filesystem.
func (c *Cache) linkBlob(ctx context.Context, k key, dl *download) (err error) {
	staging, err := stagingPath()
	if err != nil {
		return err
	}
	full := filepath.Join(c.fsRoot, filepath.FromSlash(staging))
	if err := os.MkdirAll(filepath.Dir(full), 0o777); err != nil {
		return fmt.Errorf("link %s: %w", k, err)
	}
	if err := dl.spool.Sync(); err != nil {
		return fmt.Errorf("link %s: sync spool: %w", k, err)
	}
	if err := linkSpool(dl.spool, full); err != nil {
		return fmt.Errorf("link %s: %w", k, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(full)
		}
	}()
	if err := c.waitEvicted(ctx, k); err != nil {
		return err
	}
	if err := c.d.Move(ctx, staging, k.dataPath()); err != nil {
		return fmt.Errorf("link %s: move %s into place: %w", k, staging, err)
	}
	return nil
}
