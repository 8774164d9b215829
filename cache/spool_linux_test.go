//go:build linux

package cache

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// On the filesystem driver a verified download is committed by linking its
// spool into place: the committed file is the spool's inode, not a copy.
// Where linking cannot work (here: a FilesystemRoot that is not the
// driver's), the spool is copied as before and nothing is left behind.
func TestCommitLinksTheSpool(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wrongRoot bool
		linked    bool
	}{
		{name: "linked", linked: true},
		{name: "copied when the link cannot be moved into place", wrongRoot: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root, other := t.TempDir(), t.TempDir()
			fsRoot := root
			if tc.wrongRoot {
				fsRoot = other
			}
			c, _ := newTestCache(t, fsDriver(root), Options{FilesystemRoot: fsRoot, SpoolDir: t.TempDir()})
			data, dgst := randomBytes(t, 3<<20)
			b, err := c.Blob(ctx, dgst, int64(len(data)), staticUpstream(data).fetch)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := b.NewReader(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(rc)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %d bytes, %v", len(got), err)
			}
			c.wg.Wait() // committed
			spool, err := rc.(*tailReader).dl.spool.Stat()
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
			k := key{kindBlob, dgst}
			committed, err := os.Stat(filepath.Join(root, filepath.FromSlash(k.dataPath())))
			if err != nil {
				t.Fatalf("not committed: %v", err)
			}
			if same := os.SameFile(spool, committed); same != tc.linked {
				t.Fatalf("committed file is the spool's inode: %v, want %v", same, tc.linked)
			}
			if n := committed.Sys().(*syscall.Stat_t).Nlink; n != 1 {
				t.Fatalf("committed file has %d links, want 1 (no staging name left)", n)
			}
			if left := diskFiles(t, other); len(left) != 0 {
				t.Fatalf("left in the other directory: %v", left)
			}
			b2, err := c.Blob(ctx, dgst, int64(len(data)), staticUpstream(nil).fetch)
			if err != nil || !b2.Cached() {
				t.Fatalf("hit after commit: %v", err)
			}
			if got, err := readBlob(t, b2, 0); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("committed bytes: %v", err)
			}
		})
	}
}
