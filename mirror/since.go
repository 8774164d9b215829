package mirror

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// baseExport is what an incremental export needs to know of the export it
// builds on: its identity, and every manifest and blob the importing side
// holds once it has imported it.
type baseExport struct {
	Base
	has map[digest.Digest]bool
}

// readBase reads a previous export (a directory or a tar file). Its blobs
// are not re-hashed: a wrong base only makes the new export larger, or
// makes its import fail, never load something unverified (the importing
// side checks what it holds, not what the base claims).
func readBase(p string) (*baseExport, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("--since: %w", err)
	}
	b := &baseExport{Base: Base{Path: p}, has: map[digest.Digest]bool{}}
	var index []byte
	if fi.IsDir() {
		if index, err = readBounded(filepath.Join(p, indexFile), maxManifestBytes); err != nil {
			return nil, fmt.Errorf("--since %s: %w (not a trustproxy export?)", p, err)
		}
		files, err := os.ReadDir(filepath.Join(p, filepath.FromSlash(blobsDir)))
		if err != nil {
			return nil, fmt.Errorf("--since %s: %w", p, err)
		}
		for _, f := range files {
			if dg, err := blobDigest(f.Name()); err == nil {
				b.has[dg] = true
			}
		}
	} else if index, err = readBaseTar(p, b.has); err != nil {
		return nil, fmt.Errorf("--since %s: %w", p, err)
	}
	var ix Index
	if err := json.Unmarshal(index, &ix); err != nil || ix.Format != formatV1 {
		return nil, fmt.Errorf("--since %s: %s is not a trustproxy export index (%v)", p, indexFile, err)
	}
	b.Digest = digest.FromBytes(index)
	for _, e := range ix.Entries {
		b.References = append(b.References, e.Reference)
	}
	for _, dg := range ix.Omitted {
		b.has[dg] = true
	}
	return b, nil
}

// readBaseTar lists a tar export's blobs and returns its index file; an
// *os.File lets the tar reader seek past the blobs' contents.
func readBaseTar(p string, has map[digest.Digest]bool) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var index []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w (truncated or not a tar stream)", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == indexFile {
			if h.Size > maxManifestBytes {
				return nil, fmt.Errorf("%s is larger than %d bytes", indexFile, maxManifestBytes)
			}
			if index, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("read tar: %w", err)
			}
			continue
		}
		if dir, file := path.Split(name); dir == blobsDir+"/" && h.Typeflag == tar.TypeReg {
			if dg, err := blobDigest(file); err == nil {
				has[dg] = true
			}
		}
	}
	if index == nil {
		return nil, fmt.Errorf("no %s in the tar (not a trustproxy export?)", indexFile)
	}
	return index, nil
}

// importRecord is where the importing side notes an imported export, by
// the digest of its index: an incremental export is imported only on top
// of its base.
func importRecord(stateDir string, d digest.Digest) string {
	return filepath.Join(stateDir, "mirror", "imported", d.Encoded()+".json")
}

// checkBase refuses an incremental export whose base this side has not
// imported.
func checkBase(ix *Index, stateDir string) error {
	if ix.Since == nil {
		return nil
	}
	if err := ix.Since.Digest.Validate(); err != nil {
		return fmt.Errorf("%s: since.digest: %w", indexFile, err)
	}
	what := fmt.Sprintf("this export is incremental (--since): it builds on export %s (written from %s, holding %s)",
		ix.Since.Digest, ix.Since.Path, strings.Join(ix.Since.References, ", "))
	if stateDir == "" {
		return fmt.Errorf("%s, and this side has no state directory recording what it imported", what)
	}
	if _, err := os.Stat(importRecord(stateDir, ix.Since.Digest)); err != nil {
		return fmt.Errorf("%s, which this side has not imported: import that export first, or a full one", what)
	}
	return nil
}
