package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/gofrs/flock"
)

// lockFile takes an exclusive advisory lock on path, waiting for another
// process that holds it until ctx ends (SIGINT/SIGTERM in the CLI): flock(2)
// on Unix, LockFileEx on Windows. The kernel drops the lock if the process
// dies, so a crash never leaves a repository locked.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	l := flock.New(path, flock.SetPermissions(0o644))
	ok, err := l.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("lock repository %s: another publisher holds it: %w", path, ctx.Err())
	}
	if err != nil || !ok {
		return nil, fmt.Errorf("lock repository %s: %v", path, err)
	}
	return func() { _ = l.Unlock() }, nil
}
