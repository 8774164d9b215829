package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// commit loads a verified plan: content first (invisible to clients, since
// nothing vouches for it yet), then each trust repository's files, with
// timestamp.json last: the new timestamp is what makes the new snapshot,
// targets and content current, as in any consistent-snapshot TUF
// repository. Finally this side's persisted state is advanced through the
// same verified refresh the proxy runs, so a later rollback is refused.
func commit(ctx context.Context, dir string, p *plan, o ImportOptions) (*ImportResult, error) {
	res := &ImportResult{Entries: p.entries, Reused: len(p.reused)}
	rd := p.rd
	var done Progress
	for _, size := range p.blobs {
		done.TotalObjects++
		done.TotalBytes += size
	}
	done.TotalObjects += len(p.order)
	tick := func(n int64) {
		done.Objects++
		done.Bytes += n
		if o.Progress != nil {
			o.Progress(done)
		}
	}
	for dg, size := range p.blobs {
		f, err := rd.open(dg)
		if err != nil {
			return nil, err
		}
		added, err := o.Cache.PutBlob(ctx, dg, size, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("load blob: %w", err)
		}
		if added {
			res.BlobsAdded++
			res.BytesAdded += size
		}
		tick(size)
	}
	for _, dg := range p.order {
		if p.reused[dg] {
			continue
		}
		if _, _, err := o.Cache.GetManifest(ctx, dg); err == nil {
			tick(0)
			continue
		}
		_, body, err := rd.Manifest(ctx, dg)
		if err != nil {
			return nil, err
		}
		if err := o.Cache.PutManifest(ctx, dg, p.manifests[dg], body); err != nil {
			return nil, fmt.Errorf("load manifest: %w", err)
		}
		res.ManifestsAdded++
		res.BytesAdded += int64(len(body))
		tick(int64(len(body)))
	}
	for _, e := range p.entries {
		added, err := putTagHint(ctx, o, e)
		if err != nil {
			return nil, err
		}
		if added {
			res.TagsAdded++
		}
	}
	n, err := commitAttachments(ctx, p, o)
	if err != nil {
		return nil, err
	}
	res.TagsAdded, res.Attachments = res.TagsAdded+n, len(p.attachments)
	for _, name := range p.trusts {
		t := o.Trusts[name]
		changed, err := commitTrust(ctx, dir, name, t, o)
		if err != nil {
			return nil, err
		}
		if changed {
			res.TrustUpdated = append(res.TrustUpdated, name)
		}
	}
	if err := recordImport(o.StateDir, p.index); err != nil {
		return nil, err
	}
	res.NoOp = res.BlobsAdded == 0 && res.ManifestsAdded == 0 && res.TagsAdded == 0 && len(res.TrustUpdated) == 0
	return res, nil
}

// putTagHint lets an offline proxy resolve a tagged entry whose trust
// target does not hash the manifest (a bundle signed by its bundle.json);
// the proxy still verifies what the hint names.
func putTagHint(ctx context.Context, o ImportOptions, e Entry) (bool, error) {
	subj, err := parseRef(e.Reference)
	if err != nil || subj.Tag == "" {
		return false, err
	}
	repo := subj.Upstream + "/" + subj.Repository
	if d, err := o.Cache.TagHint(ctx, repo, subj.Tag); err == nil && d == e.Digest {
		return false, nil
	}
	if err := o.Cache.PutTagHint(ctx, repo, subj.Tag, e.Digest); err != nil {
		return false, fmt.Errorf("load tag: %w", err)
	}
	return true, nil
}

func commitTrust(ctx context.Context, dir, name string, t ImportTrust, o ImportOptions) (bool, error) {
	if t.Metadata == "" || t.Targets == "" {
		return false, fmt.Errorf("trust %s: this side must read it from local directories (metadata, targets) for an import to update it", name)
	}
	src := filepath.Join(dir, tufDir, name)
	changed, err := syncTree(filepath.Join(src, "targets"), t.Targets, "")
	if err != nil {
		return false, fmt.Errorf("trust %s: targets: %w", name, err)
	}
	c, err := syncTree(filepath.Join(src, "metadata"), t.Metadata, "timestamp.json")
	if err != nil {
		return false, fmt.Errorf("trust %s: metadata: %w", name, err)
	}
	changed = changed || c
	repo, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: name, Root: t.Root, StateDir: t.StateDir, Metadata: t.Metadata, Targets: t.Targets,
		AllowExpiredFor: t.AllowExpiredFor,
	}, trustfetch.Options{Logger: o.Logger, Now: o.Now})
	if err != nil {
		return changed, fmt.Errorf("trust %s: %w", name, err)
	}
	defer repo.Close()
	if _, err := repo.Index(); err != nil {
		return changed, fmt.Errorf("trust %s: advancing this side's state: %w", name, err)
	}
	return changed, nil
}

// syncTree copies every file under src to dst that dst lacks or holds
// differently, each atomically; last, if set, is copied after all others.
func syncTree(src, dst, last string) (bool, error) {
	changed := false
	var deferred string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == src {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == last {
			deferred = rel
			return nil
		}
		c, err := syncFile(p, filepath.Join(dst, rel))
		changed = changed || c
		return err
	})
	if err == nil && deferred != "" {
		var c bool
		c, err = syncFile(filepath.Join(src, deferred), filepath.Join(dst, deferred))
		changed = changed || c
	}
	return changed, err
}

// syncFile makes dst hold src's (small, metadata-sized) content.
func syncFile(src, dst string) (bool, error) {
	b, err := readBounded(src, trustfetch.DefaultMaxMetadataBytes)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".import-*")
	if err != nil {
		return false, err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return false, err
	}
	return true, nil
}

// recordImport notes the export as imported (see checkBase).
func recordImport(stateDir string, index []byte) error {
	if stateDir == "" {
		return nil
	}
	p := importRecord(stateDir, digest.FromBytes(index))
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, index) {
		return nil
	}
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	if err == nil {
		err = renameio.WriteFile(p, index, 0o644)
	}
	if err != nil {
		return fmt.Errorf("record the import: %w", err)
	}
	return nil
}

// copyDir copies the regular files of src (if it exists) into dst.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	_, err := syncTree(src, dst, "")
	return err
}
