package publish

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// writeFileAtomic replaces path with data so that a web server serving the
// directory never hands out a half-written file, and a crash leaves the old
// or the new file (renameio syncs the data before the rename).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, perm)
}

// writeNewFile creates path with data and fails if it exists: keys are never
// silently overwritten.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
