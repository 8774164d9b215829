package trustfetch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"go.uber.org/zap"
)

// The state directory holds:
//
//	metadata/  go-tuf's verified metadata (root.json, timestamp.json,
//	           snapshot.json, targets.json, <escaped role>.json): the
//	           rollback protection that survives restarts
//	verified/  the targets roles in compact verified form (verifiedstate.go)
//	blobs/sha256/<hex>  targets downloaded by FetchTarget
const (
	stateMetadataDir = "metadata"
	stateBlobDir     = "blobs"
)

// trustedRoot chooses the root a refresh starts from: the newest root
// verified so far (state) unless the pinned root is newer, which is how an
// operator recovers from a compromised root key.
func (r *Repository) trustedRoot() []byte {
	path := filepath.Join(r.metaDir, "root.json")
	b, err := readFileBounded(path, r.cfg.MaxMetadataBytes)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("cannot read the stored root; starting from the pinned root", zap.String("path", path), zap.Error(err))
		}
		return r.pinned
	}
	tm, err := trustedmetadata.New(b)
	if err != nil {
		r.log.Warn("the stored root is not valid; starting from the pinned root", zap.String("path", path), zap.Error(err))
		return r.pinned
	}
	if v := tm.Root.Signed.Version; v < r.pinnedVersion {
		r.log.Info("the pinned root is newer than the stored root; starting from the pinned root",
			zap.Int64("stored", v), zap.Int64("pinned", r.pinnedVersion))
		return r.pinned
	}
	return b
}

// writeFileCache replaces path with data through a rename, without waiting
// for the disk: for what is a cache (a torn file fails its checksum and is
// rebuilt), so that thousands of roles do not cost thousands of fsyncs.
func writeFileCache(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic replaces path so that readers see the old or the new
// content, never a torn file, also after a crash: the rollback-protection
// state is only as good as its durability, so renameio syncs the data
// before the rename.
func writeFileAtomic(path string, data []byte) error {
	if err := renameio.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
