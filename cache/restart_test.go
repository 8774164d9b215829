package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Reopening a cache on the same root finds exactly what was committed, in
// the same LRU order as far as the driver can tell (commit times), and
// clears what a crash can leave behind.
func TestRestartConsistency(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c, _ := newTestCache(t, fsDriver(root), Options{})

	var blobs []digest.Digest
	for i := range 3 {
		blobs = append(blobs, putBlob(t, c, bytes.Repeat([]byte{byte('a' + i)}, 1000)))
	}
	manifest := []byte(`{"schemaVersion":2}`)
	mDgst := digest.FromBytes(manifest)
	must(t, c.PutManifest(ctx, mDgst, ociManifest, manifest))
	want := c.Size()
	c.Close()

	// Commit times: blobs[1] oldest, then blobs[0], the manifest, blobs[2].
	base := time.Now().Add(-time.Hour)
	for i, k := range []key{{kindBlob, blobs[1]}, {kindBlob, blobs[0]}, {kindManifest, mDgst}, {kindBlob, blobs[2]}} {
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(filepath.Join(root, k.dataPath()), mt, mt); err != nil {
			t.Fatal(err)
		}
	}

	// What crashes leave: a staging object, a manifest whose data never
	// arrived, a blob directory whose data was evicted, a stray file next
	// to a committed blob.
	orphan := key{kindManifest, digest.FromString("orphan")}
	evicted := key{kindBlob, digest.FromString("evicted")}
	leftovers := map[string][]byte{
		stagingRoot + "/0123456789abcdef":                      []byte("partial"),
		orphan.mediaTypePath():                                 []byte(ociManifest),
		key{kindBlob, blobs[0]}.dir() + "/data.1234.tmp":       []byte("x"),
		key{kindManifest, mDgst}.dir() + "/mediatype.5678.tmp": []byte("y"),
	}
	for p, b := range leftovers {
		writeFile(t, filepath.Join(root, p), b)
	}
	must(t, os.MkdirAll(filepath.Join(root, evicted.dir()), 0o755))

	c2, _ := newTestCache(t, fsDriver(root), Options{})
	if c2.Size() != want {
		t.Fatalf("Size() after restart = %d, want %d", c2.Size(), want)
	}
	for _, b := range blobs {
		if n, err := c2.StatBlob(ctx, b); err != nil || n != 1000 {
			t.Fatalf("StatBlob(%s) after restart: %d, %v", b, n, err)
		}
	}
	mt, got, err := c2.GetManifest(ctx, mDgst)
	if err != nil || mt != ociManifest || !bytes.Equal(got, manifest) {
		t.Fatalf("GetManifest after restart: %q, %v", mt, err)
	}
	if _, _, err := c2.GetManifest(ctx, orphan.dgst); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half-written manifest visible after restart: %v", err)
	}
	var files []string
	for _, f := range diskFiles(t, root) {
		files = append(files, filepath.ToSlash(f))
	}
	wantFiles := []string{
		key{kindBlob, blobs[0]}.dataPath(), key{kindBlob, blobs[1]}.dataPath(), key{kindBlob, blobs[2]}.dataPath(),
		key{kindManifest, mDgst}.dataPath(), key{kindManifest, mDgst}.mediaTypePath(),
	}
	slices.Sort(files)
	slices.Sort(wantFiles)
	if !slices.Equal(files, wantFiles) {
		t.Fatalf("files after restart:\n%v\nwant:\n%v", files, wantFiles)
	}

	// The rebuilt LRU order follows commit times: with room for one blob
	// less, the oldest goes.
	c2.Close()
	c3, _ := newTestCache(t, fsDriver(root), Options{MaxSize: want - 1000})
	for b, wantPresent := range map[digest.Digest]bool{blobs[1]: false, blobs[0]: true, blobs[2]: true} {
		if present := committed(t, c3, key{kindBlob, b}); present != wantPresent {
			t.Errorf("after restart with a smaller MaxSize, %s present=%v, want %v", b, present, wantPresent)
		}
	}
	if !committed(t, c3, key{kindManifest, mDgst}) {
		t.Error("manifest evicted before older blobs")
	}
}

func TestRestartStagingGrace(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old, fresh := filepath.Join(root, stagingRoot, "old"), filepath.Join(root, stagingRoot, "fresh")
	writeFile(t, old, []byte("abandoned"))
	writeFile(t, fresh, []byte("another replica is writing this"))
	must(t, os.Chtimes(old, now.Add(-2*time.Hour), now.Add(-2*time.Hour)))
	must(t, os.Chtimes(fresh, now.Add(-time.Minute), now.Add(-time.Minute)))

	newTestCache(t, fsDriver(root), Options{StagingGrace: time.Hour, Now: func() time.Time { return now }})
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging object older than the grace period not swept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("staging object within the grace period swept: %v", err)
	}
	newTestCache(t, fsDriver(root), Options{})
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("without a grace period the staging area is not swept: %v", err)
	}
}

// A replica sharing the storage sees objects the other committed.
func TestSharedStorageAdoptsForeignCommits(t *testing.T) {
	ctx := context.Background()
	d := inmemoryDriver()
	a, _ := newTestCache(t, d, Options{})
	b, _ := newTestCache(t, d, Options{})
	data, dgst := randomBytes(t, 1000)
	putBlob(t, a, data)
	up := staticUpstream(data)
	blob, err := b.Blob(ctx, dgst, 1000, up.fetch)
	if err != nil || !blob.Cached() || up.calls.Load() != 0 {
		t.Fatalf("replica b fetched a blob replica a had committed: cached=%v calls=%d err=%v", blob != nil && blob.Cached(), up.calls.Load(), err)
	}
	if b.Size() != 1000 {
		t.Fatalf("adopted blob not counted: Size() = %d", b.Size())
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b, 0o644))
}
