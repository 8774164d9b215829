package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// MaxManifestSize bounds what PutManifest accepts; manifests are read whole.
const MaxManifestSize = 4 << 20

// Options configure a Cache. The zero value is usable.
type Options struct {
	// MaxSize is the byte budget for committed objects; 0 is unbounded.
	// Above it, least-recently-used objects are evicted.
	MaxSize int64
	// SpoolDir holds in-flight downloads; default os.TempDir(). Spool files
	// have no name (O_TMPFILE on Linux, else unlinked as soon as created), so
	// a crash leaves nothing here. On the same filesystem as a filesystem
	// driver's root, verified downloads are linked into the cache, not copied.
	SpoolDir string
	// Leases, when set, make a cold blob one upstream download for all
	// replicas sharing the storage (see DownloadLeases).
	Leases DownloadLeases
	// ClusterSweep is how often, with Leases and MaxSize, replicas publish
	// what they used and one of them evicts for the whole storage
	// (0: DefaultClusterSweep).
	ClusterSweep time.Duration
	// LeaseTTL is the S3 download lease lifetime NewFromConfig uses
	// (0: DefaultLeaseTTL).
	LeaseTTL time.Duration
	// StagingGrace keeps staging objects younger than this when New sweeps
	// the staging area. Set it when several replicas share one storage root,
	// so a starting replica does not break another's commit; 0 sweeps all.
	StagingGrace time.Duration
	// FilesystemRoot is the directory behind a filesystem driver (its
	// rootdirectory). With it, a verified download is committed by linking
	// its spool file into the driver's staging area and renaming it into
	// place, not by copying it, when the spool directory is on the same
	// filesystem (Linux); otherwise it is copied. NewFromConfig sets it for
	// the filesystem driver.
	FilesystemRoot string
	// ManifestMemory is how many bytes of verified manifests are kept in
	// memory (least recently used out), answered without a storage read:
	// 0 is DefaultManifestMemory, negative keeps none.
	ManifestMemory int64
	Logger         *zap.Logger           // nil: zap.NewNop()
	Registerer     prometheus.Registerer // nil: no metrics registered
	Now            func() time.Time      // nil: time.Now
}

// Cache is a content-addressed store of verified blobs and manifests on a
// distribution storage driver. It knows nothing about policy: it only
// guarantees that what it returns hashes to the digest it was asked for.
type Cache struct {
	d       storagedriver.StorageDriver
	maxSize int64
	spool   string
	fsRoot  string // Options.FilesystemRoot
	grace   time.Duration
	leases  DownloadLeases
	// Cluster eviction (clustersize.go): sweep period, a nudge after
	// commits, this replica's usage and its name in the usage records.
	sweep     time.Duration
	kick      chan struct{}
	usage     map[string]int64
	replicaID string
	log       *zap.Logger
	now       func() time.Time
	m         *metrics

	// life bounds detached work (downloads, their commits); Close cancels it.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	ix       index
	inflight map[digest.Digest]*download
	// pending counts writers of a key between their first staging write and
	// their index update; such keys are neither evicted nor adopted.
	pending map[key]int
	// evicting holds keys whose driver objects are being deleted; the channel
	// closes when that is done, and writers of the same key wait for it.
	evicting map[key]chan struct{}
}

// New opens a cache on d: it sweeps staging leftovers, drops half-written
// manifests, and rebuilds the index and size by walking the driver.
func New(ctx context.Context, d storagedriver.StorageDriver, opts Options) (*Cache, error) {
	if d == nil {
		return nil, errors.New("new cache: nil storage driver")
	}
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("new cache: negative MaxSize %d", opts.MaxSize)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = os.TempDir()
	}
	if err := os.MkdirAll(opts.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("new cache: spool dir: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new cache: %w", err)
	}
	memBudget := opts.ManifestMemory
	if memBudget == 0 {
		memBudget = DefaultManifestMemory
	}
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Cache{
		d:        d,
		maxSize:  opts.MaxSize,
		spool:    opts.SpoolDir,
		fsRoot:   opts.FilesystemRoot,
		grace:    opts.StagingGrace,
		leases:   opts.Leases,
		log:      opts.Logger.With(zap.String("driver", d.Name())),
		now:      opts.Now,
		m:        m,
		life:     life,
		cancel:   cancel,
		ix:       newIndex(memBudget),
		inflight: make(map[digest.Digest]*download),
		pending:  make(map[key]int),
		evicting: make(map[key]chan struct{}),
	}
	if err := c.recover(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("new cache on %s driver: %w", d.Name(), err)
	}
	if c.clusterEvictionEnabled() {
		c.sweep = opts.ClusterSweep
		if c.sweep <= 0 {
			c.sweep = DefaultClusterSweep
		}
		c.kick = make(chan struct{}, 1)
		c.usage = map[string]int64{}
		if c.replicaID, err = randomName(); err != nil {
			cancel()
			return nil, fmt.Errorf("new cache: %w", err)
		}
		c.mu.Lock()
		c.ix.recent = make(map[key]struct{})
		c.mu.Unlock()
		c.wg.Add(1)
		go c.runClusterSweeps()
		c.kickSweep()
	}
	return c, nil
}

// Close cancels downloads in flight (their readers get an error, nothing of
// them is committed) and waits for them to stop. Committed objects stay.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Size returns the bytes held by committed objects.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ix.bytes
}

// StatBlob returns the size of a committed blob, or an error wrapping ErrNotFound.
func (c *Cache) StatBlob(ctx context.Context, dgst digest.Digest) (int64, error) {
	if err := validateDigest("stat blob", dgst); err != nil {
		return 0, err
	}
	e, ok, err := c.lookup(ctx, key{kindBlob, dgst})
	if err != nil {
		return 0, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	if !ok {
		return 0, fmt.Errorf("stat blob %s: %w", dgst, ErrNotFound)
	}
	return e.size, nil
}

// lookup finds a committed object and marks it used. It returns a copy of
// the entry. An object committed to the driver by someone else (a replica on
// shared storage) is adopted into the index.
func (c *Cache) lookup(ctx context.Context, k key) (entry, bool, error) {
	c.mu.Lock()
	if e := c.ix.get(k); e != nil {
		c.ix.touch(e)
		cp := *e
		c.mu.Unlock()
		return cp, true, nil
	}
	busy := c.evicting[k] != nil || c.pending[k] > 0
	c.mu.Unlock()
	if busy {
		return entry{}, false, nil
	}
	fi, err := c.d.Stat(ctx, k.dataPath())
	if isPathNotFound(err) {
		return entry{}, false, nil
	}
	if err != nil {
		return entry{}, false, fmt.Errorf("stat %s: %w", k.dataPath(), err)
	}
	c.mu.Lock()
	if c.evicting[k] != nil || c.pending[k] > 0 {
		c.mu.Unlock()
		return entry{}, false, nil
	}
	e, added := c.ix.add(k, fi.Size())
	cp := *e
	c.updateGaugesLocked()
	c.mu.Unlock()
	if added {
		c.log.Debug("adopted object committed by another writer", zap.Stringer("object", k), zap.Int64("size", fi.Size()))
		c.evictIfNeeded(ctx)
	}
	return cp, true, nil
}

// forget drops an index entry whose driver object vanished under us.
func (c *Cache) forget(k key) {
	c.mu.Lock()
	if e := c.ix.get(k); e != nil {
		c.ix.remove(e)
		c.updateGaugesLocked()
	}
	c.mu.Unlock()
}

func (c *Cache) updateGaugesLocked() {
	c.m.storedBytes.Set(float64(c.ix.bytes))
	c.m.storedObjects.Set(float64(len(c.ix.entries)))
}

func isPathNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}
