package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/cache"
)

// layoutReader reads blobs of a verified export directory; it is the
// cnab.Fetcher the importer resolves bundles through. For an incremental
// export, cache is this side's cache: what the export omits (its base
// carried it) is read from there, content this side verified when it
// imported the base.
type layoutReader struct {
	dir   string
	cache *cache.Cache
}

func (r layoutReader) path(d digest.Digest) string {
	return filepath.Join(r.dir, filepath.FromSlash(blobsDir), d.Encoded())
}

// inLayout reports whether the export itself holds d.
func (r layoutReader) inLayout(d digest.Digest) bool {
	_, err := os.Stat(r.path(d))
	return err == nil
}

func (r layoutReader) size(d digest.Digest) (int64, error) {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return 0, fmt.Errorf("digest %q is not a sha256 digest", d)
	}
	fi, err := os.Stat(r.path(d))
	if err == nil {
		return fi.Size(), nil
	}
	if r.cache != nil && errors.Is(err, fs.ErrNotExist) {
		n, cerr := r.cache.StatBlob(context.Background(), d)
		if cerr == nil {
			return n, nil
		}
		return 0, fmt.Errorf("missing from the export, and not in this side's cache as its base should have left it: %w", cerr)
	}
	return 0, fmt.Errorf("missing from the export: %w", err)
}

// Manifest returns a manifest's bytes; the media type is unknown ("").
func (r layoutReader) Manifest(ctx context.Context, d digest.Digest) (string, []byte, error) {
	if r.cache != nil && !r.inLayout(d) {
		if _, b, err := r.cache.GetManifest(ctx, d); err == nil {
			return "", b, nil
		}
	}
	b, err := r.Blob(ctx, d, maxManifestBytes)
	return "", b, err
}

// Blob reads a small blob whole.
func (r layoutReader) Blob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	if _, err := r.size(d); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if r.cache != nil && !r.inLayout(d) {
		return r.cachedBlob(ctx, d, maxSize)
	}
	b, err := readBounded(r.path(d), maxSize)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return b, nil
}

// cachedBlob reads a small committed blob from this side's cache (hashed
// when it was committed); it never fetches.
func (r layoutReader) cachedBlob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	b, err := r.cache.Blob(ctx, d, -1, func(context.Context) (io.ReadCloser, int64, error) {
		return nil, 0, fmt.Errorf("not in this side's cache")
	})
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	rc, err := b.NewReader(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
	if err == nil && int64(len(body)) > maxSize {
		err = fmt.Errorf("larger than %d bytes", maxSize)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return body, nil
}

func (r layoutReader) open(d digest.Digest) (io.ReadCloser, error) { return os.Open(r.path(d)) }
