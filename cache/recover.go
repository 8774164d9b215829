package cache

import (
	"context"
	"fmt"
	"path"
	"slices"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"go.uber.org/zap"
)

// recover brings the index in line with the driver after a start or crash:
// staging leftovers are swept, object directories without their data object
// (a crash mid-write or mid-eviction) are deleted, and every committed object
// is indexed. Without access times in the driver, LRU order starts from the
// objects' modification (commit) times.
func (c *Cache) recover(ctx context.Context) error {
	if err := c.sweepStaging(ctx); err != nil {
		return err
	}
	type found struct {
		k        key
		dir      string
		data     storagedriver.FileInfo
		hasType  bool
		leftover []string // files that are not part of the layout
	}
	objects := map[key]*found{}
	for _, root := range []string{blobsRoot, manifestsRoot} {
		err := c.d.Walk(ctx, root, func(fi storagedriver.FileInfo) error {
			if fi.IsDir() {
				return nil
			}
			k, name, ok := parseObjectPath(fi.Path())
			if !ok {
				c.log.Warn("ignoring unexpected object in cache storage", zap.String("path", fi.Path()))
				return nil
			}
			f := objects[k]
			if f == nil {
				f = &found{k: k, dir: path.Dir(fi.Path())}
				objects[k] = f
			}
			switch {
			case name == dataName:
				f.data = fi
			case name == mediaTypeName && k.kind == kindManifest:
				f.hasType = true
			default:
				f.leftover = append(f.leftover, fi.Path())
			}
			return nil
		})
		if err != nil && !isPathNotFound(err) {
			return fmt.Errorf("walk %s: %w", root, err)
		}
	}

	var complete []*found
	for _, f := range objects {
		for _, p := range f.leftover {
			if err := c.d.Delete(ctx, p); err != nil && !isPathNotFound(err) {
				return fmt.Errorf("delete leftover %s: %w", p, err)
			}
		}
		if f.data == nil || (f.k.kind == kindManifest && !f.hasType) {
			c.log.Info("deleting incomplete object", zap.Stringer("object", f.k))
			if err := c.deleteObject(ctx, f.k); err != nil {
				return fmt.Errorf("delete incomplete %s: %w", f.k, err)
			}
			continue
		}
		complete = append(complete, f)
	}
	slices.SortFunc(complete, func(a, b *found) int { return a.data.ModTime().Compare(b.data.ModTime()) })
	c.mu.Lock()
	for _, f := range complete { // oldest first, so the newest ends up most recently used
		c.ix.add(f.k, f.data.Size())
	}
	c.updateGaugesLocked()
	objectsN, bytes := len(c.ix.entries), c.ix.bytes
	c.mu.Unlock()
	c.log.Info("cache opened", zap.Int("objects", objectsN), zap.Int64("bytes", bytes))
	c.evictIfNeeded(ctx)
	return nil
}

// sweepStaging deletes staging objects, keeping those younger than
// StagingGrace (which may belong to a live replica on shared storage).
func (c *Cache) sweepStaging(ctx context.Context) error {
	if c.grace <= 0 {
		if err := c.d.Delete(ctx, stagingRoot); err != nil && !isPathNotFound(err) {
			return fmt.Errorf("sweep %s: %w", stagingRoot, err)
		}
		return nil
	}
	cutoff := c.now().Add(-c.grace)
	var stale []string
	err := c.d.Walk(ctx, stagingRoot, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() && fi.ModTime().Before(cutoff) {
			stale = append(stale, fi.Path())
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return fmt.Errorf("walk %s: %w", stagingRoot, err)
	}
	for _, p := range stale {
		if err := c.d.Delete(ctx, p); err != nil && !isPathNotFound(err) {
			return fmt.Errorf("sweep %s: %w", p, err)
		}
	}
	if len(stale) > 0 {
		c.log.Info("swept staging leftovers", zap.Int("objects", len(stale)), zap.Duration("older_than", c.grace))
	}
	return nil
}
