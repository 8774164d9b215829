package mirror

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// layoutReader reads blobs of a verified export directory; it is the
// cnab.Fetcher the importer resolves bundles through.
type layoutReader struct{ dir string }

func (r layoutReader) path(d digest.Digest) string {
	return filepath.Join(r.dir, filepath.FromSlash(blobsDir), d.Encoded())
}

func (r layoutReader) size(d digest.Digest) (int64, error) {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return 0, fmt.Errorf("digest %q is not a sha256 digest", d)
	}
	fi, err := os.Stat(r.path(d))
	if err != nil {
		return 0, fmt.Errorf("missing from the export: %w", err)
	}
	return fi.Size(), nil
}

// Manifest returns a manifest's bytes; the media type is unknown ("").
func (r layoutReader) Manifest(_ context.Context, d digest.Digest) (string, []byte, error) {
	b, err := r.Blob(context.Background(), d, maxManifestBytes)
	return "", b, err
}

// Blob reads a small blob whole.
func (r layoutReader) Blob(_ context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	if _, err := r.size(d); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	b, err := readBounded(r.path(d), maxSize)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	return b, nil
}

func (r layoutReader) open(d digest.Digest) (io.ReadCloser, error) { return os.Open(r.path(d)) }
