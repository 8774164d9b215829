package cache

import (
	"context"

	"go.uber.org/zap"
)

// evictIfNeeded deletes least-recently-used committed objects until the
// cache fits MaxSize. Objects being written are skipped. The index is
// updated first and the driver deletes run outside the lock, so hits are
// never stalled behind a slow driver; writers of the same key wait for the
// delete to finish (see waitEvicted).
func (c *Cache) evictIfNeeded(ctx context.Context) {
	if c.maxSize <= 0 {
		return
	}
	type victim struct {
		k    key
		size int64
		done chan struct{}
	}
	var victims []victim
	c.mu.Lock()
	for el := c.ix.lru.Back(); el != nil && c.ix.bytes > c.maxSize; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if c.pending[e.key] == 0 && c.evicting[e.key] == nil {
			c.ix.remove(e)
			ch := make(chan struct{})
			c.evicting[e.key] = ch
			victims = append(victims, victim{e.key, e.size, ch})
		}
		el = prev
	}
	c.updateGaugesLocked()
	c.mu.Unlock()

	ctx = context.WithoutCancel(ctx) // the index already forgot them; finish the deletes
	for _, v := range victims {
		if err := c.deleteObject(ctx, v.k); err != nil {
			c.log.Warn("evicted object not deleted from storage", zap.Stringer("object", v.k), zap.Error(err))
		} else {
			c.log.Debug("evicted", zap.Stringer("object", v.k), zap.Int64("size", v.size))
		}
		c.m.evictions.Inc()
		c.mu.Lock()
		delete(c.evicting, v.k)
		c.mu.Unlock()
		close(v.done)
	}
}

// deleteObject removes an object's data first (its commit point), then the
// rest of its directory, so a crash in between leaves it invisible.
func (c *Cache) deleteObject(ctx context.Context, k key) error {
	if err := c.d.Delete(ctx, k.dataPath()); err != nil && !isPathNotFound(err) {
		return err
	}
	if err := c.d.Delete(ctx, k.dir()); err != nil && !isPathNotFound(err) {
		return err
	}
	return nil
}
