package trustfetch

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"go.uber.org/zap"
)

// refreshTimestamp is the refresh when only the timestamp changed: go-tuf's
// Updater.Refresh would load, parse and verify the snapshot and the whole
// top-level targets role again (seconds and hundreds of MiB for a role of
// 100,000 targets) only to find what the index was built from. Here the
// new timestamp is verified against the trusted root and the stored
// timestamp (rollback protection, as go-tuf does it) and, if it names the
// very snapshot file the index was built from, the index is kept with the
// new timestamp's version and expiry, and the timestamp is stored where
// go-tuf keeps it, so the next refresh (after a restart too) refuses
// anything older.
//
// It returns nil whenever anything else may have changed or anything does
// not check out: a newer root, another snapshot, a missing or invalid
// stored timestamp, a download or verification failure, an expiry. The
// full refresh then runs and decides, with go-tuf's own errors.
func (r *Repository) refreshTimestamp(prev *Index, uc *config.UpdaterConfig, fetch *tufFetcher, now time.Time) *Index {
	if prev == nil || prev.snapshotMeta == (snapshotEntry{}) {
		return nil
	}
	ix, err := r.timestampOnly(prev, uc, fetch, now)
	if err != nil {
		r.log.Debug("timestamp-only refresh not possible; running a full refresh", zap.Error(err))
		return nil
	}
	return ix
}

func (r *Repository) timestampOnly(prev *Index, uc *config.UpdaterConfig, fetch *tufFetcher, now time.Time) (*Index, error) {
	tm, err := trustedmetadata.New(uc.LocalTrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("load trusted root: %w", err)
	}
	tm.RefTime = now
	if v := tm.Root.Signed.Version; v != prev.versions.Root {
		return nil, fmt.Errorf("trusted root is version %d, the index was built with version %d", v, prev.versions.Root)
	}
	// Root rotation comes first in the TUF client workflow: any next root
	// is go-tuf's to verify.
	next := fmt.Sprintf("%d.%s.json", tm.Root.Signed.Version+1, metadata.ROOT)
	_, err = fetch.DownloadFile(fetch.base+next, uc.RootMaxLength, 0)
	var he *metadata.ErrDownloadHTTP
	switch {
	case err == nil:
		return nil, fmt.Errorf("%s exists", next)
	case !errors.As(err, &he) || he.StatusCode != http.StatusNotFound:
		return nil, fmt.Errorf("check for %s: %w", next, err)
	}

	stored, err := readFileBounded(filepath.Join(r.metaDir, metadata.TIMESTAMP+".json"), uc.TimestampMaxLength)
	if err != nil {
		return nil, fmt.Errorf("read stored timestamp: %w", err)
	}
	// An expired stored timestamp still sets the rollback floor, as in
	// go-tuf's loadTimestamp.
	if _, err := tm.UpdateTimestamp(stored); tm.Timestamp == nil {
		return nil, fmt.Errorf("verify stored timestamp: %w", err)
	}
	b, err := fetch.DownloadFile(fetch.base+metadata.TIMESTAMP+".json", uc.TimestampMaxLength, 0)
	if err != nil {
		return nil, fmt.Errorf("download timestamp: %w", err)
	}
	storedVersion := tm.Timestamp.Signed.Version
	if _, err := tm.UpdateTimestamp(b); err != nil {
		// The same version as stored: go-tuf keeps the stored one.
		var eq *metadata.ErrEqualVersionNumber
		if !errors.As(err, &eq) || tm.Timestamp.Signed.Version != storedVersion {
			return nil, fmt.Errorf("verify timestamp: %w", err)
		}
	}
	ts := tm.Timestamp
	m := ts.Signed.Meta[metadata.SNAPSHOT+".json"]
	if m == nil {
		return nil, errors.New("timestamp lists no snapshot")
	}
	if entryOf(m) != prev.snapshotMeta {
		return nil, fmt.Errorf("timestamp names snapshot version %d, the index was built from version %d", m.Version, prev.snapshotMeta.version)
	}

	ix := prev.withMetadata()
	ix.versions.Timestamp = ts.Signed.Version
	ix.expires, ix.expiresRole = earlier(tm.Root.Signed.Expires, metadata.ROOT, ts.Signed.Expires, metadata.TIMESTAMP)
	ix.expires, ix.expiresRole = earlier(ix.expires, ix.expiresRole, prev.rolesExpires, prev.rolesExpiresRole)
	if !now.Before(ix.expires) {
		return nil, fmt.Errorf("%s.json is expired", ix.expiresRole)
	}
	if ts.Signed.Version != storedVersion {
		if err := writeFileAtomic(filepath.Join(r.metaDir, metadata.TIMESTAMP+".json"), b); err != nil {
			return nil, fmt.Errorf("persist timestamp: %w", err)
		}
	}
	return ix, nil
}
