package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// ErrLeaseHeld is returned by DownloadLeases.Acquire while another holder's
// lease has not expired.
var ErrLeaseHeld = errors.New("lease held by another replica")

// DownloadLeases coordinates the caches of several replicas sharing one
// storage, so that a cold blob is downloaded from upstream once for the
// whole cluster. A lease expires unless renewed, so a replica that dies
// mid-download only delays the others. Implementations use the storage's
// own primitives (S3 conditional writes); see S3Leases.
type DownloadLeases interface {
	// Acquire takes the lease called name, or returns ErrLeaseHeld.
	Acquire(ctx context.Context, name string) (Lease, error)
	// TTL is how long a lease lives without renewal.
	TTL() time.Duration
}

// Lease is one held lease.
type Lease interface {
	// Renew extends the lease; an error means it may be lost.
	Renew(ctx context.Context) error
	// Release gives the lease up.
	Release(ctx context.Context) error
}

// clusterPoll bounds how often a waiting replica looks for the holder's
// commit (and for an expired lease).
const (
	clusterPollMin = 50 * time.Millisecond
	clusterPollMax = time.Second
)

var errAdopted = errors.New("committed by another replica")

// clusterTurn is runDownload's hook: without leases it returns at once. It
// returns errAdopted when dl was finished from another replica's commit;
// otherwise release must be called once the commit is done. On another
// error dl has been started with it.
func (c *Cache) clusterTurn(ctx context.Context, dl *download) (release func(), err error) {
	if c.leases == nil {
		return func() {}, nil
	}
	release, adopted, err := c.awaitClusterTurn(ctx, dl)
	if adopted {
		return nil, errAdopted
	}
	if err != nil {
		dl.size, dl.startErr = -1, err
		close(dl.started)
		return func() {}, err
	}
	return release, nil
}

// awaitClusterTurn runs before a download starts when leases are
// configured. Either this cache takes the blob's lease and downloads (release
// must be called after the commit), or another replica commits the blob
// meanwhile and dl is finished as that committed object (adopted).
func (c *Cache) awaitClusterTurn(ctx context.Context, dl *download) (release func(), adopted bool, err error) {
	k := key{kindBlob, dl.dgst}
	name := "blobs/" + dl.dgst.Algorithm().String() + "/" + dl.dgst.Encoded()
	log := c.log.With(zap.Stringer("digest", dl.dgst))
	wait := clusterPollMin
	waited := false
	for {
		if fi, serr := c.d.Stat(ctx, k.dataPath()); serr == nil {
			if waited {
				c.m.clusterAdopted.Inc()
			}
			return nil, true, c.adoptCommitted(dl, fi.Size())
		} else if !isPathNotFound(serr) {
			log.Warn("stat before cluster download", zap.Error(serr))
		}
		lease, lerr := c.leases.Acquire(ctx, name)
		switch {
		case lerr == nil:
			// The holder may have committed and released between the
			// Stat and the Acquire.
			if fi, serr := c.d.Stat(ctx, k.dataPath()); serr == nil {
				_ = lease.Release(context.WithoutCancel(ctx))
				return nil, true, c.adoptCommitted(dl, fi.Size())
			}
			return c.keepRenewed(ctx, lease, log), false, nil
		case errors.Is(lerr, ErrLeaseHeld):
			if !waited {
				waited = true
				c.m.clusterWaits.Inc()
				log.Debug("another replica is downloading this blob; waiting for its commit")
			}
		default:
			// Coordination is an optimisation: without it the blob is
			// downloaded here too, and content addressing keeps the
			// commits identical.
			log.Warn("download lease unavailable; downloading without it", zap.Error(lerr))
			return func() {}, false, nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, false, fmt.Errorf("wait for another replica's download of %s: %w", dl.dgst, context.Cause(ctx))
		}
		wait = min(wait*2, clusterPollMax)
	}
}

// keepRenewed renews lease until the returned release is called.
func (c *Cache) keepRenewed(ctx context.Context, lease Lease, log *zap.Logger) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.leases.TTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := lease.Renew(ctx); err != nil {
					// Another replica may take over and download too;
					// the commit stays correct, only the cost doubles.
					log.Warn("download lease not renewed", zap.Error(err))
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("download lease not released; it expires by itself", zap.Error(err))
		}
	}
}

// adoptCommitted finishes dl as the object another replica committed: its
// readers open it from the storage.
func (c *Cache) adoptCommitted(dl *download, size int64) error {
	k := key{kindBlob, dl.dgst}
	var err error
	if dl.expected >= 0 && size != dl.expected {
		err = fmt.Errorf("blob %s: committed by another replica with %d bytes, expected %d: %w", dl.dgst, size, dl.expected, ErrSizeMismatch)
	}
	c.mu.Lock()
	if c.inflight[dl.dgst] == dl {
		delete(c.inflight, dl.dgst)
	}
	if err == nil {
		c.ix.add(k, size)
		c.updateGaugesLocked()
	}
	c.endWriteLocked(k)
	c.mu.Unlock()
	dl.mu.Lock()
	dl.written = size
	dl.committed = err == nil
	dl.mu.Unlock()
	dl.size, dl.startErr = size, err
	if err != nil {
		dl.size = -1
	}
	close(dl.started)
	dl.finish(err)
	dl.releaseRef()
	if err == nil {
		c.evictIfNeeded(context.Background())
	}
	return err
}
