package publish

import (
	"context"
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

// writeSynced writes files into dir under their names, each through a
// temporary file that is synced and then renamed, and syncs dir once: the
// way to make thousands of files durable without a directory sync each.
// The files are written in parallel, so the kernel can commit their syncs
// together.
func writeSynced(dir string, files []pendingFile) error {
	err := parallel(context.Background(), len(files), func(i int) error {
		return writeTempRename(dir, files[i].name, files[i].data)
	})
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func writeTempRename(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
