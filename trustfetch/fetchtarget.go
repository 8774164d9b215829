package trustfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// FetchTarget returns the content of a target (an in-toto layout, link or
// key, a bundle.json), verified against t's length and sha256. Verified
// content is cached by hash under StateDir, so a target is downloaded once.
// Targets larger than MaxTargetBytes are refused.
func (r *Repository) FetchTarget(ctx context.Context, t Target) ([]byte, error) {
	if err := checkTarget(t, r.cfg.MaxTargetBytes); err != nil {
		return nil, fmt.Errorf("fetch target %q from trust repository %q: %w", t.Name, r.cfg.Name, err)
	}
	cached := r.cachedPath(t)
	if b, err := readFileBounded(cached, t.Length); err == nil {
		if verifyContent(b, t) == nil {
			return b, nil
		}
		r.log.Warn("cached target is corrupt; downloading it again", zap.String("target", t.Name), zap.String("path", cached))
	} else if !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("cannot read cached target; downloading it again", zap.String("target", t.Name), zap.Error(err))
	}

	consistent := true // go-tuf's root default
	if ix := r.current.Load(); ix != nil {
		consistent = ix.consistent
	}
	rel, err := targetPath(t, consistent)
	if err != nil {
		return nil, fmt.Errorf("fetch target %q from trust repository %q: %w", t.Name, r.cfg.Name, err)
	}
	// Reading one byte past the recorded length reveals a longer file.
	b, err := r.targets.get(ctx, rel, t.Length)
	var tl *tooLargeError
	if errors.As(err, &tl) {
		err = fmt.Errorf("%s is longer than the %d bytes the trust data records", tl.where, t.Length)
	}
	if err == nil {
		err = verifyContent(b, t)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch target %q from trust repository %q: %w", t.Name, r.cfg.Name, err)
	}
	if err := writeFileAtomic(cached, b); err != nil {
		r.log.Warn("cannot cache target", zap.String("target", t.Name), zap.Error(err))
	}
	return b, nil
}

func checkTarget(t Target, max int64) error {
	if len(t.SHA256) != 2*sha256.Size || strings.ToLower(t.SHA256) != t.SHA256 {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", t.SHA256)
	}
	if _, err := hex.DecodeString(t.SHA256); err != nil {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", t.SHA256)
	}
	if t.Length < 0 {
		return fmt.Errorf("length %d is negative", t.Length)
	}
	if t.Length > max {
		return fmt.Errorf("length %d exceeds MaxTargetBytes (%d)", t.Length, max)
	}
	return nil
}

func verifyContent(b []byte, t Target) error {
	if int64(len(b)) != t.Length {
		return fmt.Errorf("got %d bytes, the trust data records %d", len(b), t.Length)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != t.SHA256 {
		return fmt.Errorf("content has sha256 %s, the trust data records %s", got, t.SHA256)
	}
	return nil
}

// targetPath is where a target lives under the targets location, escaped
// for a URL. With consistent snapshots the file name is prefixed with its
// hash: docker.io/acme/app:1.0 → docker.io/acme/<sha256>.app:1.0.
func targetPath(t Target, consistent bool) (string, error) {
	segs := strings.Split(t.Name, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("target name %q has an empty, \".\" or \"..\" path segment", t.Name)
		}
	}
	if consistent {
		segs[len(segs)-1] = t.SHA256 + "." + segs[len(segs)-1]
	}
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/"), nil
}

// cachedPath is where a verified target is kept: content-addressed, so
// targets with the same content share one file.
func (r *Repository) cachedPath(t Target) string {
	return filepath.Join(r.blobDir, "sha256", t.SHA256)
}
