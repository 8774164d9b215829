package publish

import (
	"fmt"

	"github.com/gofrs/flock"
)

// lockFile takes an exclusive advisory lock on path, waiting for another
// process that holds it: flock(2) on Unix, LockFileEx on Windows. The
// kernel drops the lock if the process dies, so a crash never leaves a
// repository locked.
func lockFile(path string) (unlock func(), err error) {
	l := flock.New(path, flock.SetPermissions(0o644))
	if err := l.Lock(); err != nil {
		return nil, fmt.Errorf("lock repository %s: %w", path, err)
	}
	return func() { _ = l.Unlock() }, nil
}
