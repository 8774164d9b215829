package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/policy"
)

// ImportTrust is one trust repository of the importing side.
type ImportTrust struct {
	// Root is the pinned root.json of this side's configuration.
	Root string
	// StateDir is this side's persisted trust state (rollback protection);
	// the same directory the proxy uses.
	StateDir string
	// Metadata and Targets are the local directories this side's proxy
	// reads the trust repository from; the import commits into them.
	Metadata, Targets string
	// AllowExpiredFor is this side's configured grace past expiry.
	AllowExpiredFor time.Duration
}

// ImportOptions is the importing side's configuration.
type ImportOptions struct {
	Policy policy.Config
	Trusts map[string]ImportTrust
	Cache  *cache.Cache
	// StateDir is this side's state directory: each imported export is
	// recorded under it, so that an incremental one is imported only on
	// top of its base.
	StateDir string
	// WorkDir holds a tar stream while it is verified (default: the
	// system's temporary directory). It needs room for the whole export.
	WorkDir  string
	Logger   *zap.Logger
	Now      func() time.Time
	Progress func(Progress)
}

// ImportResult says what an import changed.
type ImportResult struct {
	Entries        []Entry  `json:"entries"`
	BlobsAdded     int      `json:"blobsAdded"`
	ManifestsAdded int      `json:"manifestsAdded"`
	TagsAdded      int      `json:"tagsAdded"`
	BytesAdded     int64    `json:"bytesAdded"`
	TrustUpdated   []string `json:"trustUpdated"`
	// Reused counts the manifests and blobs an incremental export left
	// out because this side already held them from its base.
	Reused int `json:"reused,omitempty"`
	// Attachments counts the attachments (signatures, SBOMs, attestations)
	// the export carried, all verified.
	Attachments int `json:"attachments,omitempty"`
	// NoOp is true when everything was already imported.
	NoOp bool `json:"noop"`
}

// ImportTar verifies and imports an export tar stream. The stream is
// unpacked (hashing every blob) into a directory under WorkDir first:
// nothing is loaded until all of it has been read and verified.
func ImportTar(ctx context.Context, r io.Reader, o ImportOptions) (*ImportResult, error) {
	dir, err := os.MkdirTemp(o.WorkDir, "trustproxy-import-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	verified, err := extractTar(r, dir)
	if err != nil {
		return nil, fmt.Errorf("import refused, nothing loaded: %w", err)
	}
	return importDir(ctx, dir, verified, o)
}

// ImportDir verifies and imports an export directory.
func ImportDir(ctx context.Context, dir string, o ImportOptions) (*ImportResult, error) {
	return importDir(ctx, dir, nil, o)
}

func importDir(ctx context.Context, dir string, verified map[digest.Digest]bool, o ImportOptions) (*ImportResult, error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Cache == nil {
		return nil, fmt.Errorf("import: no cache configured")
	}
	work, err := os.MkdirTemp(o.WorkDir, "trustproxy-verify-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(work)
	plan, err := verify(ctx, dir, verified, work, o)
	if err != nil {
		return nil, fmt.Errorf("import refused, nothing loaded: %w", err)
	}
	res, err := commit(ctx, dir, plan, o)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

// readLayout reads the export's three index files; raw is
// trustproxy-mirror.json as it is, which identifies the export.
func readLayout(dir string) (_ *Index, _ ocispec.Index, raw []byte, _ error) {
	var lay ocispec.ImageLayout
	var oix ocispec.Index
	var ix Index
	for _, f := range []struct {
		name string
		v    any
	}{{layoutFile, &lay}, {ociIndex, &oix}, {indexFile, &ix}} {
		b, err := readBounded(filepath.Join(dir, f.name), maxManifestBytes)
		if err != nil {
			return nil, oix, nil, fmt.Errorf("%s: %w (not a trustproxy export?)", f.name, err)
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			return nil, oix, nil, fmt.Errorf("%s: %w", f.name, err)
		}
		raw = b
	}
	if lay.Version != ocispec.ImageLayoutVersion {
		return nil, oix, nil, fmt.Errorf("%s: layout version %q is not %q", layoutFile, lay.Version, ocispec.ImageLayoutVersion)
	}
	if ix.Format != formatV1 {
		return nil, oix, nil, fmt.Errorf("%s: format %q is not %q", indexFile, ix.Format, formatV1)
	}
	return &ix, oix, raw, nil
}

// readBounded reads a whole small file, refusing more than limit bytes.
func readBounded(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return b, nil
}
