package trustfetch

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ExportMetadata writes the verified metadata behind the current index to
// dir as a consistent-snapshot TUF metadata tree, so that a verifier with
// the same pinned root can update from it with no network: every root after
// the pinned one (<v>.root.json; the state keeps only the newest, so the
// others are fetched again from the repository and checked by the importer),
// timestamp.json, <v>.snapshot.json, <v>.targets.json and <v>.<role>.json
// for every role the snapshot lists. It returns the versions written.
func (r *Repository) ExportMetadata(ctx context.Context, dir string) (Versions, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return Versions{}, ctx.Err()
	}
	defer func() { <-r.sem }()
	ix := r.current.Load()
	if ix == nil {
		return Versions{}, fmt.Errorf("export trust repository %q: %w", r.cfg.Name, ErrNoTrustData)
	}
	if !ix.consistent {
		return Versions{}, fmt.Errorf("export trust repository %q: the repository does not use consistent snapshots, which an offline copy needs", r.cfg.Name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Versions{}, err
	}
	v := ix.versions
	put := func(name string, b []byte) error {
		return writeFileAtomic(filepath.Join(dir, name), b)
	}
	for n := r.pinnedVersion + 1; n < v.Root; n++ {
		rel := fmt.Sprintf("%d.root.json", n)
		b, err := r.meta.get(ctx, rel, r.cfg.MaxMetadataBytes)
		if err != nil {
			return v, fmt.Errorf("export trust repository %q: root version %d: %w", r.cfg.Name, n, err)
		}
		if err := put(rel, b); err != nil {
			return v, err
		}
	}
	read := func(file string) ([]byte, error) {
		return readFileBounded(filepath.Join(r.metaDir, file), r.cfg.MaxMetadataBytes)
	}
	root, err := read("root.json")
	if err != nil {
		return v, fmt.Errorf("export trust repository %q: %w", r.cfg.Name, err)
	}
	if v.Root > r.pinnedVersion {
		if err := put(fmt.Sprintf("%d.root.json", v.Root), root); err != nil {
			return v, err
		}
	}
	ts, err := read("timestamp.json")
	if err != nil {
		return v, fmt.Errorf("export trust repository %q: %w", r.cfg.Name, err)
	}
	snapBytes, err := read("snapshot.json")
	if err != nil {
		return v, fmt.Errorf("export trust repository %q: %w", r.cfg.Name, err)
	}
	snap, err := (&metadata.Metadata[metadata.SnapshotType]{}).FromBytes(snapBytes)
	if err != nil {
		return v, fmt.Errorf("export trust repository %q: stored snapshot: %w", r.cfg.Name, err)
	}
	if err := put(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version), snapBytes); err != nil {
		return v, err
	}
	for file, meta := range snap.Signed.Meta {
		role := strings.TrimSuffix(file, ".json")
		b, err := read(url.PathEscape(role) + ".json")
		if err != nil || roleVersion(b) != meta.Version {
			// Not in the state at the version the snapshot names: fetch
			// it; the importer verifies it like any other.
			if b, err = r.meta.get(ctx, fmt.Sprintf("%d.%s.json", meta.Version, url.PathEscape(role)), r.cfg.MaxMetadataBytes); err != nil {
				return v, fmt.Errorf("export trust repository %q: role %q: %w", r.cfg.Name, role, err)
			}
		}
		if err := put(fmt.Sprintf("%d.%s.json", meta.Version, url.PathEscape(role)), b); err != nil {
			return v, err
		}
	}
	// The timestamp goes last: it is what makes the rest current.
	return v, put("timestamp.json", ts)
}

// roleVersion reads the signed version of a targets role, -1 if unreadable.
func roleVersion(b []byte) int64 {
	md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromBytes(b)
	if err != nil {
		return -1
	}
	return md.Signed.Version
}

// TargetFile is where target t lives in a consistent-snapshot targets
// tree, as a slash-separated, URL-escaped relative path.
func TargetFile(t Target) (string, error) { return targetPath(t, true) }
