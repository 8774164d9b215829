// Root versions: reading the chain N.root.json as a client does, signing
// and writing a new root.

package publish

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// latestRoot follows N.root.json from 1 to the newest, as a client would.
func (r *Repo) latestRoot() (*metadata.Metadata[metadata.RootType], error) {
	var latest *metadata.Metadata[metadata.RootType]
	for v := int64(1); ; v++ {
		path := r.metadataPath(fmt.Sprintf("%d.root.json", v))
		md, err := (&metadata.Metadata[metadata.RootType]{}).FromFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		latest = md
	}
	if latest == nil {
		return nil, fmt.Errorf("no %s", r.metadataPath("1.root.json"))
	}
	return latest, nil
}

// signRoot signs root with the threshold of its own root keys and, when
// rotating, of the previous root's: a client accepts version N+1 only if
// both N's and N+1's root roles approve it.
func (r *Repo) signRoot(root, prev *metadata.Metadata[metadata.RootType]) error {
	root.ClearSignatures()
	signedBy := map[string]bool{}
	for _, by := range []*metadata.Metadata[metadata.RootType]{prev, root} {
		if by == nil {
			continue
		}
		signers, err := r.keys.signers(rootRoleKeys(by, metadata.ROOT))
		if err != nil {
			return err
		}
		for _, s := range signers {
			pk, err := s.PublicKey()
			if err != nil {
				return err
			}
			id, err := keyID(pk)
			if err != nil {
				return err
			}
			if signedBy[id] {
				continue
			}
			signedBy[id] = true
			if _, err := root.Sign(s); err != nil {
				return fmt.Errorf("sign root: %w", err)
			}
		}
	}
	if prev != nil {
		if err := prev.VerifyDelegate(metadata.ROOT, root); err != nil {
			return fmt.Errorf("new root does not verify with the previous root: %w", err)
		}
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return fmt.Errorf("root does not verify with itself: %w", err)
	}
	return nil
}

func (r *Repo) writeRoot(root *metadata.Metadata[metadata.RootType]) error {
	b, err := root.ToBytes(true)
	if err != nil {
		return fmt.Errorf("encode root: %w", err)
	}
	path := r.metadataPath(fmt.Sprintf("%d.root.json", root.Signed.Version))
	if err := writeFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("write root: %w", err)
	}
	return nil
}

func rootRoleKeys(root *metadata.Metadata[metadata.RootType], role string) roleKeys {
	rk := roleKeys{role: role, keys: root.Signed.Keys}
	if r, ok := root.Signed.Roles[role]; ok {
		rk.keyIDs, rk.threshold = r.KeyIDs, r.Threshold
	}
	return rk
}
