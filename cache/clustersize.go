package cache

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"go.uber.org/zap"
)

// Cluster eviction: with leases (shared storage) MaxSize bounds the whole
// bucket, not one replica's view of it. Every ClusterSweep each replica
// publishes which objects it used (a usage record of its own), then tries
// to take the "evictor" lease; the holder walks the storage, merges every
// live replica's usage with the objects' commit times, and deletes the
// least recently used objects until the bucket fits, skipping any object a
// replica used in the last two sweeps (it may be serving it now; an S3 GET
// already streaming finishes even if the object is deleted). Nothing here
// is a vote: the lease is the storage's conditional write, usage records
// are hints, and the worst outcome of a stale hint is a cache miss.
const (
	// DefaultClusterSweep is how often replicas publish usage and evict.
	DefaultClusterSweep = 30 * time.Second
	usageSet            = "usage"
	usageKey            = "replicas"
	// usageRetention bounds how long a replica remembers a use; older
	// objects are ordered by their commit time.
	usageRetention = 24 * time.Hour
	// maxUsageEntries keeps one replica's usage record within MaxRecordSize.
	maxUsageEntries = 40_000
)

// usageRecord is one replica's published usage.
type usageRecord struct {
	At   int64            `json:"at"`   // unix ms of the publication
	Used map[string]int64 `json:"used"` // object ("blob sha256:…") → unix ms of its last use
}

func (c *Cache) clusterEvictionEnabled() bool { return c.leases != nil && c.maxSize > 0 }

// runClusterSweeps publishes usage and evicts for the cluster until Close.
func (c *Cache) runClusterSweeps() {
	defer c.wg.Done()
	t := time.NewTicker(c.sweep)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		if err := c.publishUsage(c.life); err != nil && c.life.Err() == nil {
			c.log.Warn("publishing cache usage for the cluster", zap.Error(err))
		}
		lease, err := c.leases.Acquire(c.life, "evictor")
		if err != nil {
			continue // another replica evicts (or S3 is unreachable: next sweep)
		}
		if err := c.evictCluster(c.life); err != nil && c.life.Err() == nil {
			c.log.Warn("cluster eviction", zap.Error(err))
		}
		_ = lease.Release(context.WithoutCancel(c.life))
	}
}

// kickSweep asks for a sweep soon (after a commit grew the bucket).
func (c *Cache) kickSweep() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// publishUsage folds the objects used since the last sweep into this
// replica's usage and writes it as its record.
func (c *Cache) publishUsage(ctx context.Context) error {
	now := c.now()
	c.mu.Lock()
	recent := c.ix.recent
	c.ix.recent = make(map[key]struct{})
	c.mu.Unlock()
	for k := range recent {
		c.usage[k.String()] = now.UnixMilli()
	}
	cutoff := now.Add(-usageRetention).UnixMilli()
	for k, t := range c.usage {
		if t < cutoff {
			delete(c.usage, k)
		}
	}
	for len(c.usage) > maxUsageEntries { // drop the oldest
		oldest, ot := "", int64(0)
		for k, t := range c.usage {
			if oldest == "" || t < ot {
				oldest, ot = k, t
			}
		}
		delete(c.usage, oldest)
	}
	b, err := json.Marshal(usageRecord{At: now.UnixMilli(), Used: c.usage})
	if err != nil {
		return err
	}
	return c.PutRecord(ctx, usageSet, usageKey, c.replicaID, b)
}

// clusterUsage merges the usage of every replica that published within
// the last few sweeps (a dead replica's record stops counting).
func (c *Cache) clusterUsage(ctx context.Context) (map[string]int64, error) {
	recs, err := c.Records(ctx, usageSet, usageKey)
	if err != nil {
		return nil, err
	}
	live := c.now().Add(-5 * c.sweep).UnixMilli()
	used := map[string]int64{}
	for _, r := range recs {
		var u usageRecord
		if json.Unmarshal(r.Body, &u) != nil || u.At < live {
			continue
		}
		for k, t := range u.Used {
			used[k] = max(used[k], t)
		}
	}
	return used, nil
}

// evictCluster deletes least recently used objects of the whole storage
// until it fits MaxSize.
func (c *Cache) evictCluster(ctx context.Context) error {
	type object struct {
		k        key
		size     int64
		lastUsed int64
		mod      int64 // commit time: breaks ties of usage (a sweep's granularity)
	}
	var objs []object
	var total int64
	for _, root := range []string{blobsRoot, manifestsRoot} {
		err := c.d.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
			if fi.IsDir() {
				return nil
			}
			if k, name, ok := parseObjectPath(fi.Path()); ok && name == dataName {
				objs = append(objs, object{k: k, size: fi.Size(), lastUsed: fi.ModTime().UnixMilli(), mod: fi.ModTime().UnixMilli()})
				total += fi.Size()
			}
			return nil
		})
		if err != nil && !isPathNotFound(err) {
			return err
		}
	}
	if total <= c.maxSize {
		return nil
	}
	used, err := c.clusterUsage(ctx)
	if err != nil {
		return err
	}
	for i := range objs {
		objs[i].lastUsed = max(objs[i].lastUsed, used[objs[i].k.String()])
	}
	slices.SortFunc(objs, func(a, b object) int {
		return cmp.Or(cmp.Compare(a.lastUsed, b.lastUsed), cmp.Compare(a.mod, b.mod))
	})
	inUse := c.now().Add(-2 * c.sweep).UnixMilli()
	for _, o := range objs {
		if total <= c.maxSize {
			break
		}
		if o.lastUsed >= inUse {
			continue
		}
		c.mu.Lock()
		busy := c.pending[o.k] > 0 || c.evicting[o.k] != nil
		if !busy {
			if e := c.ix.get(o.k); e != nil {
				c.ix.remove(e)
			}
			c.evicting[o.k] = make(chan struct{})
			c.updateGaugesLocked()
		}
		c.mu.Unlock()
		if busy {
			continue
		}
		if err := c.deleteUnindexed(ctx, o.k); err != nil {
			c.log.Warn("cluster eviction: object not deleted", zap.Stringer("object", o.k), zap.Error(err))
			continue
		}
		total -= o.size
		c.m.evictions.Inc()
		c.log.Debug("evicted for the cluster", zap.Stringer("object", o.k), zap.Int64("size", o.size))
	}
	if total > c.maxSize {
		c.log.Info("cache storage above maxsize: the remaining objects are in use", zap.Int64("bytes", total), zap.Int64("maxsize", c.maxSize))
	}
	return nil
}
