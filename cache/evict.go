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
	if c.clusterEvictionEnabled() {
		if c.kick != nil { // nil while New recovers
			c.kickSweep()
		}
		return
	}
	var victims []entry
	c.mu.Lock()
	for el := c.ix.lru.Back(); el != nil && c.ix.bytes > c.maxSize; {
		prev := el.Prev()
		if e := el.Value.(*entry); c.unindexLocked(e) {
			victims = append(victims, *e)
		}
		el = prev
	}
	c.mu.Unlock()

	for _, v := range victims {
		if err := c.deleteUnindexed(ctx, v.key); err != nil {
			c.log.Warn("evicted object not deleted from storage", zap.Stringer("object", v.key), zap.Error(err))
		} else {
			c.log.Debug("evicted", zap.Stringer("object", v.key), zap.Int64("size", v.size))
		}
		c.m.evictions.Inc()
	}
}

// unindexLocked removes e from the index and marks its key as being deleted,
// unless it is being written or already being deleted. Call deleteUnindexed
// next.
func (c *Cache) unindexLocked(e *entry) bool {
	if c.pending[e.key] > 0 || c.evicting[e.key] != nil {
		return false
	}
	c.ix.remove(e)
	c.evicting[e.key] = make(chan struct{})
	c.updateGaugesLocked()
	return true
}

// deleteUnindexed deletes the objects of a key taken out by unindexLocked
// and releases writers waiting for that.
func (c *Cache) deleteUnindexed(ctx context.Context, k key) error {
	// The index already forgot the object: finish even if the caller left.
	err := c.deleteObject(context.WithoutCancel(ctx), k)
	c.mu.Lock()
	ch := c.evicting[k]
	delete(c.evicting, k)
	c.mu.Unlock()
	close(ch)
	return err
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
