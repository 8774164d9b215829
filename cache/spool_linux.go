//go:build linux

package cache

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// createSpool makes a download's spool file in dir. On Linux it is an
// O_TMPFILE: it never has a name (a crash leaves nothing), yet a verified
// spool can be linked into a filesystem cache instead of copied. named is
// the path to remove when it is closed ("" when there is none).
func createSpool(dir string) (f *os.File, linkable bool, named string, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err == nil {
		return os.NewFile(uintptr(fd), dir+"/<trustproxy spool>"), true, "", nil
	}
	// Filesystems without O_TMPFILE: a named file, unlinked at once.
	f, named, err = createUnlinkedSpool(dir)
	return f, false, named, err
}

// linkSpool gives the O_TMPFILE spool f the name path (on the same
// filesystem).
func linkSpool(f *os.File, path string) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("link spool to %s: %w", path, err)
	}
	var lerr error
	if err := sc.Control(func(fd uintptr) {
		lerr = unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	}); err != nil {
		return fmt.Errorf("link spool to %s: %w", path, err)
	}
	if lerr != nil {
		return fmt.Errorf("link spool to %s: %w", path, lerr)
	}
	return nil
}
