package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// NewTargetFile is one entry for AddTargetFiles: a target whose bytes are
// stored under targets/ so clients can download it.
type NewTargetFile struct {
	// Role is the targets role; "" means RoleFor(Name).
	Role   string
	Name   string
	Data   []byte
	Custom map[string]any
}

// AddTargetFiles stores every file under targets/<dir>/<sha256>.<base> and
// stages all targets in one edit of the working copy, saving each role once:
// adding n files one by one rewrites the role n times, which is quadratic in
// the size of the role (an in-toto supply chain with thousands of links).
//
// It is all or nothing and honours ctx: if any target is refused or ctx is
// cancelled (SIGINT, SIGTERM) before the staged roles are saved, nothing is
// staged and the target files this call created are removed, leaving the
// repository as it was. Once saving has begun it runs to the end.
func (r *Repo) AddTargetFiles(ctx context.Context, files []NewTargetFile) (out []Target, err error) {
	var created []string
	defer func() {
		if err != nil {
			for _, p := range created {
				_ = os.Remove(p)
			}
		}
	}()
	sums := make([]string, len(files))
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("add %d targets: stopped, nothing staged: %w", len(files), err)
		}
		if err := checkTargetName(f.Name); err != nil {
			return nil, err
		}
		p, isNew, sum, err := r.storeTargetFile(f.Name, f.Data)
		if err != nil {
			return nil, err
		}
		if isNew {
			created = append(created, p)
		}
		sums[i] = sum
	}
	err = r.editCtx(ctx, func() error {
		touched := map[string]bool{}
		for i, f := range files {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return errors.Join(fmt.Errorf("add %d targets: stopped, nothing staged: %w", len(files), err), r.load())
				}
			}
			t, err := r.addTarget(f.Role, f.Name, int64(len(f.Data)), sums[i], f.Custom)
			if err != nil {
				return errors.Join(err, r.load()) // drop what this call staged in memory
			}
			touched[t.Role] = true
			out = append(out, t)
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(fmt.Errorf("add %d targets: stopped, nothing staged: %w", len(files), err), r.load())
		}
		if err := r.saveRoles(touched); err != nil {
			return fmt.Errorf("add %d targets: %w", len(files), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// storeTargetFile writes data as targets/<dir>/<sha256>.<base> unless that
// content-addressed file is already there; isNew says whether this call
// created it.
func (r *Repo) storeTargetFile(name string, data []byte) (p string, isNew bool, sum string, err error) {
	h := sha256.Sum256(data)
	sum = hex.EncodeToString(h[:])
	dir, base := path.Split(name)
	destDir := filepath.Join(r.dir, targetsDirName, filepath.FromSlash(dir))
	p = filepath.Join(destDir, sum+"."+base)
	if _, err := os.Stat(p); err == nil {
		return p, false, sum, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, "", fmt.Errorf("add %s: %w", name, err)
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return "", false, "", fmt.Errorf("add %s: %w", name, err)
	}
	// Renamed into place so a web server never serves half a file; not
	// synced one by one (thousands of fsyncs dominate a large trust add):
	// the name is the content's hash, so a file torn by a crash is refused
	// by every client and rewritten by the next add.
	f, err := os.CreateTemp(destDir, ".tmp-*")
	if err != nil {
		return "", false, "", fmt.Errorf("add %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", false, "", fmt.Errorf("add %s: write target file: %w", name, err)
	}
	return p, true, sum, nil
}
