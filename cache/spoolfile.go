package cache

import (
	"fmt"
	"io"
	"os"
)

// reopenSpool opens the download's spool once more, positioned at off, with
// a file offset of its own: sendfile reads from the file offset, which the
// shared descriptor cannot give each reader. The spool is unlinked, so it is
// reached through /proc/self/fd (Linux); nil where that is not possible, and
// the caller copies through user space instead.
func (dl *download) reopenSpool(off int64) *os.File {
	sc, err := dl.spool.SyscallConn()
	if err != nil {
		return nil
	}
	var path string
	if err := sc.Control(func(fd uintptr) { path = fmt.Sprintf("/proc/self/fd/%d", fd) }); err != nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil
	}
	return f
}

// createUnlinkedSpool creates a named spool file and unlinks it right away:
// readers share the descriptor, and a crash leaves nothing behind. Where
// unlinking an open file fails, named is the path to remove when the last
// reference closes it.
func createUnlinkedSpool(dir string) (*os.File, string, error) {
	f, err := os.CreateTemp(dir, "trustproxy-spool-*")
	if err != nil {
		return nil, "", err
	}
	if err := os.Remove(f.Name()); err != nil {
		return f, f.Name(), nil
	}
	return f, "", nil
}
