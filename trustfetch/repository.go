package trustfetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"go.uber.org/zap"
)

// openRefreshTimeout bounds the refresh Open attempts, so that a trust
// server that hangs cannot hold up start-up; Run keeps trying.
const openRefreshTimeout = time.Minute

// Repository is one trust repository: it refreshes verified TUF metadata
// into an immutable Index and serves it without locks.
type Repository struct {
	cfg      resolved
	log      *zap.Logger
	now      func() time.Time
	metaBase string // RemoteMetadataURL handed to go-tuf
	meta     store
	targets  store
	pinned   []byte
	// pinnedVersion is the version of the pinned root.
	pinnedVersion int64
	metaDir       string
	blobDir       string

	sem     chan struct{} // serializes refreshes; a channel so waiting honours ctx
	current atomic.Pointer[Index]
	// verified holds the delegated roles of the last successful refresh
	// (guarded by sem).
	verified map[string]verifiedRole
	metrics  *metrics

	mu      sync.Mutex
	lastErr error // the last refresh's failure, nil after a success
	// refreshNow: Open did not refresh (Options.Background); Run does at once.
	refreshNow bool
	// fromState: the index in use was loaded from the state directory at
	// start and no refresh has succeeded since (see startFromStateLocked).
	fromState bool

	graceWarned atomic.Int64 // unix seconds of the last "serving expired" warning
}

// Open validates cfg, loads the pinned root and attempts a first refresh.
// A trust server that is down does not fail Open: the repository vouches
// for nothing (Index returns ErrNoTrustData) until a refresh succeeds.
func Open(ctx context.Context, cfg Config, opts Options) (*Repository, error) {
	rc, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	r := &Repository{
		cfg:     rc,
		log:     opts.Logger,
		now:     opts.Now,
		metaDir: filepath.Join(rc.StateDir, stateMetadataDir),
		blobDir: filepath.Join(rc.StateDir, stateBlobDir),
		sem:     make(chan struct{}, 1),
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.log = r.log.With(zap.String("repository", rc.Name))
	if r.now == nil {
		r.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	r.meta, r.targets = newStore(rc.metadata, client), newStore(rc.targets, client)
	if rc.metadata.url != nil {
		r.metaBase = rc.metadata.url.String()
	} else {
		r.metaBase = (&url.URL{Scheme: "file", Path: filepath.ToSlash(rc.metadata.dir)}).String()
	}
	if r.pinned, err = readFileBounded(rc.Root, rc.MaxMetadataBytes); err != nil {
		return nil, fmt.Errorf("trust repository %q config: Root: %w", rc.Name, err)
	}
	tm, err := trustedmetadata.New(r.pinned)
	if err != nil {
		return nil, fmt.Errorf("trust repository %q config: Root: %s is not a valid self-signed TUF root: %w", rc.Name, rc.Root, err)
	}
	r.pinnedVersion = tm.Root.Signed.Version
	for _, d := range []string{r.metaDir, filepath.Join(rc.StateDir, verifiedDir), filepath.Join(r.blobDir, "sha256")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("trust repository %q config: StateDir: %w", rc.Name, err)
		}
	}
	if r.metrics, err = newMetrics(r, opts.Registerer); err != nil {
		return nil, err
	}
	if opts.Background {
		// Serve what the state directory vouches for now; Run asks the
		// trust server at once, without holding up the caller.
		r.mu.Lock()
		r.lastErr = r.startFromStateLocked(ctx, errNotRefreshedYet)
		r.mu.Unlock()
		r.refreshNow = true
		return r, nil
	}
	rctx, cancel := context.WithTimeout(ctx, openRefreshTimeout)
	defer cancel()
	_ = r.Refresh(rctx) // logged and kept for Index's error; Run retries
	return r, nil
}

// Name returns the trust repository name from the configuration.
func (r *Repository) Name() string { return r.cfg.Name }

// Close unregisters the repository's metrics. Call it before opening the
// same repository name again with the same Registerer.
func (r *Repository) Close() error {
	r.metrics.unregister()
	return nil
}

// Index returns the current verified index. It never blocks on a refresh.
// It fails with an *UnavailableError (ErrNoTrustData or ErrExpired) when
// the repository vouches for nothing: before the first successful refresh,
// and from the earliest expiry of the metadata the index was built from
// until a refresh succeeds again.
func (r *Repository) Index() (*Index, error) {
	ix := r.current.Load()
	if ix != nil && r.now().Before(ix.expires) {
		return ix, nil
	}
	if ix != nil && r.withinGrace(ix) {
		return ix, nil
	}
	e := &UnavailableError{Repository: r.cfg.Name, Reason: ErrNoTrustData}
	if ix != nil {
		e.Reason, e.Expired, e.Role = ErrExpired, ix.expires, ix.expiresRole
	}
	r.mu.Lock()
	e.LastRefresh = r.lastErr
	r.mu.Unlock()
	return nil, e
}

// Refresh updates the trust data once: a fresh go-tuf Updater over the
// state directory, every delegated role, a new Index swapped in
// atomically; or, when only the timestamp changed, the same index with
// the new timestamp's version and expiry (see refreshTimestamp). On
// failure the previous index stays (until it expires). Concurrent calls
// are serialized.
func (r *Repository) Refresh(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("refresh trust repository %q: %w", r.cfg.Name, ctx.Err())
	}
	defer func() { <-r.sem }()

	start := time.Now()
	prev := r.current.Load()
	ix, verified, err := r.refresh(ctx, prev, false)
	r.metrics.refreshes.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	refused := errors.Is(err, &metadata.ErrRepository{})
	if err != nil && prev == nil && !refused {
		// Unreachable, not refused: a server that serves metadata failing
		// verification (a rollback, bad signatures) gets no fallback.
		err = r.startFromStateLocked(ctx, err)
	}
	if err != nil && refused && r.fromState {
		// The fallback was taken before the server could be asked (a
		// background Open); now it answered with metadata that fails
		// verification, which gets no fallback either.
		r.withdrawStateLocked(err)
	}
	if err != nil {
		r.metrics.failures.Add(1)
		err = fmt.Errorf("refresh trust repository %q: %w", r.cfg.Name, err)
		r.lastErr = err
		r.log.Warn("trust refresh failed; keeping the previous trust data until it expires", zap.Error(err))
		return err
	}
	r.current.Store(ix)
	if verified != nil {
		r.verified = verified
	}
	r.lastErr = nil
	r.fromState = false
	fields := []zap.Field{
		zap.Int64("root", ix.versions.Root), zap.Int64("timestamp", ix.versions.Timestamp),
		zap.Int64("snapshot", ix.versions.Snapshot), zap.Int64("targets", ix.versions.Targets),
		zap.Int("count", ix.Len()), zap.Time("expires", ix.expires), zap.Duration("took", time.Since(start)),
	}
	if prev == nil || prev.versions != ix.versions {
		r.log.Info("trust data updated", fields...)
	} else {
		r.log.Debug("trust data unchanged", fields...)
	}
	return nil
}

// refresh builds the next index, and the delegated roles it verified (nil
// when the previous index was reused as it is).
// With local set, nothing is downloaded: only the verified metadata persisted
// in the state directory is used (verified again against the stored root,
// expiry checked), see startFromStateLocked.
func (r *Repository) refresh(ctx context.Context, prev *Index, local bool) (*Index, map[string]verifiedRole, error) {
	uc, err := config.New(r.metaBase, r.trustedRoot())
	if err != nil {
		return nil, nil, err
	}
	fetch := &tufFetcher{ctx: ctx, base: ensureSlash(r.metaBase), store: r.meta, maxSize: r.cfg.MaxMetadataBytes, offline: local}
	// go-tuf's own bounds for root (512 kB) and timestamp (16 kB) stay; the
	// fetcher caps every file at MaxMetadataBytes. This one applies only
	// when the timestamp records no length: a large hash-bin repository
	// outgrows go-tuf's 2 MB snapshot default.
	uc.SnapshotMaxLength = r.cfg.MaxMetadataBytes
	// Verification runs on a clock set back by the configured grace, so
	// metadata within allowExpiredFor of its expiry still verifies.
	now := r.now().UTC().Add(-r.cfg.AllowExpiredFor)
	if ix := r.refreshTimestamp(prev, uc, fetch, now); ix != nil {
		return ix, nil, nil
	}
	tm, err := r.loadTopLevel(uc, fetch, now, local)
	if err != nil {
		return nil, nil, fmt.Errorf("update metadata from %s: %w", r.cfg.metadata, err)
	}
	versions := Versions{Root: tm.Root.Signed.Version, Timestamp: tm.Timestamp.Signed.Version, Snapshot: tm.Snapshot.Signed.Version}

	var ix *Index
	var verified map[string]verifiedRole
	if prev != nil && prev.versions.Root == versions.Root && prev.versions.Snapshot == versions.Snapshot {
		// Same root and snapshot: every role version (and hash, when the
		// snapshot records one) is what the previous index was built from.
		// Reuse it.
		ix = prev.withMetadata()
	} else {
		w := &walker{root: tm.Root, snapshot: tm.Snapshot, prev: r.verified, next: map[string]verifiedRole{}, fetch: fetch,
			metaDir: r.metaDir, verifiedDir: filepath.Join(r.cfg.StateDir, verifiedDir), consistent: tm.Root.Signed.ConsistentSnapshot, maxSize: r.cfg.MaxMetadataBytes,
			now: now, vs: &verifiers{}, log: r.log}
		segs, err := w.loadAll(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load targets roles: %w", err)
		}
		if prev != nil && prev.versions.Root != versions.Root {
			prev = nil
		}
		ix = newWalkedIndex(segs, prev)
		if n := ix.unresolved(); n.excluded > 0 || n.noSHA256 > 0 {
			r.log.Warn("ignored targets: listed by roles not trusted for them (outside their delegated paths, or shadowed), or without a sha256 hash",
				zap.Int("not_trusted", n.excluded), zap.Int("no_sha256", n.noSHA256), zap.Strings("sample", n.sample))
		}
		ix.consistent = tm.Root.Signed.ConsistentSnapshot
		verified = w.next
	}
	ix.versions = versions
	ix.versions.Targets = ix.segs[0].version
	top, delegated, delegatedRole := ix.roleExpiries()
	exp := expiry{top: tm.Root.Signed.Expires, topRole: metadata.ROOT}
	for _, e := range []struct {
		role string
		t    time.Time
	}{{metadata.TIMESTAMP, tm.Timestamp.Signed.Expires}, {metadata.SNAPSHOT, tm.Snapshot.Signed.Expires}, {metadata.TARGETS, top}} {
		exp.top, exp.topRole = earlier(exp.top, exp.topRole, e.t, e.role)
		if e.role != metadata.TIMESTAMP {
			exp.mid, exp.midRole = earlier(exp.mid, exp.midRole, e.t, e.role)
		}
	}
	ix.expires, ix.expiresRole = exp.min(delegated, delegatedRole)
	ix.rolesExpires, ix.rolesExpiresRole = exp.roles(delegated, delegatedRole)
	ix.snapshotMeta = snapshotEntry{}
	if m := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]; m != nil {
		ix.snapshotMeta = entryOf(m)
	}
	// Every role was checked as it was verified; reused ones are checked
	// here.
	if !now.Before(ix.expires) {
		return nil, nil, &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("%s.json is expired", ix.expiresRole)}
	}
	return ix, verified, nil
}

// expiry holds the earliest expiry of the top-level roles; mid is the
// earliest of the snapshot and top-level targets roles alone.
type expiry struct {
	top, mid         time.Time
	topRole, midRole string
}

// earlier returns the earlier of two expiries (zero: none), ties going
// to the smaller role name so that reports do not depend on map order.
func earlier(a time.Time, aRole string, b time.Time, bRole string) (time.Time, string) {
	if a.IsZero() || (!b.IsZero() && (b.Before(a) || (b.Equal(a) && bRole < aRole))) {
		return b, bRole
	}
	return a, aRole
}

// roles is the earliest expiry of the snapshot, top-level targets and
// delegated (zero: none) roles: what stays in use while the snapshot does.
func (e expiry) roles(delegated time.Time, role string) (time.Time, string) {
	return earlier(e.mid, e.midRole, delegated, role)
}

// min combines the top-level expiry with a delegated one (zero: none).
func (e expiry) min(delegated time.Time, role string) (time.Time, string) {
	if !delegated.IsZero() && delegated.Before(e.top) {
		return delegated, role
	}
	return e.top, e.topRole
}

func ensureSlash(s string) string {
	if len(s) > 0 && s[len(s)-1] == '/' {
		return s
	}
	return s + "/"
}

// sample keeps log lines short.
func sample(names []string) []string {
	if len(names) > 5 {
		return names[:5]
	}
	return names
}
