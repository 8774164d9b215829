package mirror

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// extractTar unpacks an export tar stream into dir, streaming, and hashes
// every blob on the way; it returns the blobs whose digest it verified. A
// stream that ends early, or holds anything but plain files and
// directories inside the export, is refused.
func extractTar(r io.Reader, dir string) (map[digest.Digest]bool, error) {
	verified := map[digest.Digest]bool{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return verified, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w (truncated or not a tar stream)", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return nil, fmt.Errorf("read tar: entry %q is outside the export", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, err
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("read tar: entry %q is not a regular file or directory", h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("read tar: entry %q: %w", h.Name, err)
		}
		var dg digest.Digest
		var dst io.Writer = f
		var v digest.Digester
		if dir, file := path.Split(name); dir == blobsDir+"/" {
			if dg, err = blobDigest(file); err != nil {
				f.Close()
				return nil, err
			}
			v = digest.SHA256.Digester()
			dst = io.MultiWriter(f, v.Hash())
		}
		n, err := io.Copy(dst, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != h.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("read tar: entry %q: %w (the tar is truncated)", h.Name, err)
			}
			return nil, fmt.Errorf("read tar: entry %q: %w", h.Name, err)
		}
		if v != nil {
			if got := v.Digest(); got != dg {
				return nil, fmt.Errorf("blob %s: content hashes to %s (tampered or corrupt)", dg, got)
			}
			verified[dg] = true
		}
	}
}

// blobDigest turns a blobs/sha256 file name into its digest.
func blobDigest(file string) (digest.Digest, error) {
	dg := digest.NewDigestFromEncoded(digest.SHA256, file)
	if err := dg.Validate(); err != nil {
		return "", fmt.Errorf("blob file %q: not a sha256 digest", path.Join(blobsDir, file))
	}
	return dg, nil
}
