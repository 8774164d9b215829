//go:build !linux

package cache

import (
	"errors"
	"os"
)

// createSpool makes a download's spool file in dir: a named file, unlinked
// at once where the system allows it. It cannot be linked into the cache.
func createSpool(dir string) (f *os.File, linkable bool, named string, err error) {
	f, named, err = createUnlinkedSpool(dir)
	return f, false, named, err
}

func linkSpool(*os.File, string) error { return errors.ErrUnsupported }
