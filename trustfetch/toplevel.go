package trustfetch

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// loadTopLevel runs the first steps of the TUF client workflow with go-tuf's
// trusted metadata set, as go-tuf's Updater.Refresh does: root rotation,
// timestamp and snapshot, each checked against the stored copy (rollback
// and freeze protection) and persisted. The top-level targets role is not
// loaded here: the walker verifies every targets role itself (see
// verifyTargetsRole), which go-tuf's Updater offers no way to skip.
//
// With local set nothing is downloaded: the stored timestamp and snapshot
// are verified against the stored root, as go-tuf's UnsafeLocalMode does.
func (r *Repository) loadTopLevel(uc *config.UpdaterConfig, fetch *tufFetcher, now time.Time, local bool) (*trustedmetadata.TrustedMetadata, error) {
	tm, err := trustedmetadata.New(uc.LocalTrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("load trusted root: %w", err)
	}
	tm.RefTime = now
	stored := func(role string, limit int64) ([]byte, error) {
		return readFileBounded(filepath.Join(r.metaDir, role+".json"), limit)
	}
	persist := func(role string, b []byte) error {
		if err := writeFileAtomic(filepath.Join(r.metaDir, role+".json"), b); err != nil {
			return fmt.Errorf("persist %s: %w", role, err)
		}
		return nil
	}
	if local {
		b, err := stored(metadata.TIMESTAMP, uc.TimestampMaxLength)
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateTimestamp(b); err != nil {
			return nil, err
		}
		if b, err = stored(metadata.SNAPSHOT, uc.SnapshotMaxLength); err != nil {
			return nil, err
		}
		if _, err := tm.UpdateSnapshot(b, false); err != nil {
			return nil, err
		}
		return tm, checkFinalSnapshot(tm)
	}

	// The root a refresh starts from is persisted, as go-tuf's updater.New
	// does: the pinned root when it is newer than the stored one.
	if old, err := stored(metadata.ROOT, uc.RootMaxLength); err != nil || !bytes.Equal(old, uc.LocalTrustedRoot) {
		if err := persist(metadata.ROOT, uc.LocalTrustedRoot); err != nil {
			return nil, err
		}
	}
	for v := tm.Root.Signed.Version + 1; v < tm.Root.Signed.Version+1+uc.MaxRootRotations; v++ {
		b, err := fetch.DownloadFile(fmt.Sprintf("%s%d.%s.json", fetch.base, v, metadata.ROOT), uc.RootMaxLength, 0)
		var he *metadata.ErrDownloadHTTP
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, err := tm.UpdateRoot(b); err != nil {
			return nil, err
		}
		if err := persist(metadata.ROOT, b); err != nil {
			return nil, err
		}
	}

	if b, err := stored(metadata.TIMESTAMP, uc.TimestampMaxLength); err == nil {
		if _, err := tm.UpdateTimestamp(b); err != nil && !errors.Is(err, &metadata.ErrRepository{}) {
			return nil, err
		}
	}
	b, err := fetch.DownloadFile(fetch.base+metadata.TIMESTAMP+".json", uc.TimestampMaxLength, 0)
	if err != nil {
		return nil, err
	}
	if _, err := tm.UpdateTimestamp(b); err != nil {
		if !errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
			return nil, err
		}
	} else if err := persist(metadata.TIMESTAMP, b); err != nil {
		return nil, err
	}

	if b, err := stored(metadata.SNAPSHOT, uc.SnapshotMaxLength); err == nil {
		_, err := tm.UpdateSnapshot(b, true)
		if err == nil {
			return tm, checkFinalSnapshot(tm)
		}
		if !errors.Is(err, &metadata.ErrRepository{}) {
			return nil, err
		}
	}
	if tm.Timestamp == nil {
		return nil, errors.New("trusted timestamp not set")
	}
	sm := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]
	if sm == nil {
		return nil, &metadata.ErrRepository{Msg: "timestamp lists no snapshot"}
	}
	length := sm.Length
	if length == 0 {
		length = uc.SnapshotMaxLength
	}
	file := metadata.SNAPSHOT + ".json"
	if tm.Root.Signed.ConsistentSnapshot {
		file = fmt.Sprintf("%d.%s", sm.Version, file)
	}
	if b, err = fetch.DownloadFile(fetch.base+file, length, 0); err != nil {
		return nil, err
	}
	if _, err := tm.UpdateSnapshot(b, false); err != nil {
		return nil, err
	}
	if err := persist(metadata.SNAPSHOT, b); err != nil {
		return nil, err
	}
	return tm, checkFinalSnapshot(tm)
}

// checkFinalSnapshot is go-tuf's check before any targets role is loaded:
// the snapshot is unexpired and the version the timestamp names.
func checkFinalSnapshot(tm *trustedmetadata.TrustedMetadata) error {
	if tm.Snapshot.Signed.IsExpired(tm.RefTime) {
		return &metadata.ErrExpiredMetadata{Msg: "snapshot.json is expired"}
	}
	if sm := tm.Timestamp.Signed.Meta[metadata.SNAPSHOT+".json"]; sm == nil || tm.Snapshot.Signed.Version != sm.Version {
		return &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("snapshot version %d is not the one the timestamp names", tm.Snapshot.Signed.Version)}
	}
	return nil
}
