package publish

import (
	"context"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RotateOptions describe the new keys of a top-level role.
type RotateOptions struct {
	// Keys is the number of new keys (default Threshold).
	Keys int
	// Threshold is the number of new keys that must sign (default: the
	// role's current threshold).
	Threshold int
	// KeyType of the new keys (default: the repository's key type).
	KeyType string
}

// RotateKeys replaces the keys of a top-level role (root, targets, snapshot
// or timestamp) with newly generated ones. It signs root version N+1 with
// the old root keys (and the new ones when rotating root), re-signs every
// role the new keys must now sign, and writes it all; the replaced key files
// move to <keys>/<role>/retired. Rotating also renews root's expiry.
func (r *Repo) RotateKeys(ctx context.Context, role string, opts RotateOptions) (*Result, error) {
	var res *Result
	err := r.editCtx(ctx, func() (err error) {
		res, err = r.rotateKeys(ctx, role, opts)
		return err
	})
	return res, err
}

func (r *Repo) rotateKeys(ctx context.Context, role string, opts RotateOptions) (*Result, error) {
	if !isTopLevel(role) {
		return nil, fmt.Errorf("rotate: %q is not a top-level role (root, targets, snapshot, timestamp)", role)
	}
	prev := r.root
	cur := prev.Signed.Roles[role]
	if opts.Threshold == 0 {
		opts.Threshold = cur.Threshold
	}
	if opts.Keys == 0 {
		opts.Keys = opts.Threshold
	}
	if opts.Threshold < 1 || opts.Keys < opts.Threshold {
		return nil, fmt.Errorf("rotate %s: threshold %d with %d key(s): need 1 <= threshold <= keys", role, opts.Threshold, opts.Keys)
	}
	if opts.KeyType == "" {
		opts.KeyType = r.settings.KeyType
	}
	if err := checkKeyType(opts.KeyType); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	// Fail before generating anything if the old root cannot sign.
	if _, err := r.keys.signers(rootRoleKeys(prev, metadata.ROOT)); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}

	b, err := prev.ToBytes(false)
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	next, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	next.Signed.Version++
	next.Signed.Expires = r.expires(metadata.ROOT, r.now().UTC())
	for _, id := range append([]string(nil), cur.KeyIDs...) {
		if err := next.Signed.RevokeKey(id, role); err != nil {
			return nil, fmt.Errorf("rotate %s: %w", role, err)
		}
	}
	keep := map[string]bool{}
	for range opts.Keys {
		k, err := r.keys.create(role, opts.KeyType)
		if err != nil {
			return nil, fmt.Errorf("rotate %s: %w", role, err)
		}
		if err := next.Signed.AddKey(k, role); err != nil {
			return nil, fmt.Errorf("rotate %s: %w", role, err)
		}
		id, _ := k.ID()
		keep[id] = true
	}
	next.Signed.Roles[role].Threshold = opts.Threshold
	if err := r.signRoot(next, prev); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}

	// Sign the rest under the new root before writing anything.
	r.root = next
	p, err := r.prepare(ctx)
	if err != nil {
		r.root = prev
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := r.writeRoot(next); err != nil {
		r.root = prev
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := p.commit(); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	if err := r.keys.retire(role, keep); err != nil {
		return nil, fmt.Errorf("rotate %s: new root published, but %w", role, err)
	}
	return p.result, nil
}
