package publish

import (
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DelegateOptions describe a new delegated targets role.
type DelegateOptions struct {
	// Parent is the delegating role (default "targets").
	Parent string
	// Paths are the target name patterns the role may sign, TUF style:
	// shell globs matched per "/"-separated segment, so "docker.io/acme/*"
	// covers docker.io/acme/app:1.0 but not docker.io/acme/team/app:1.0.
	Paths []string
	// Threshold is the number of the role's keys that must sign (default 1).
	Threshold int
	// Keys is the number of keys to generate (default Threshold). Ignored
	// when PublicKeys is set.
	Keys int
	// KeyType of generated keys (default: the repository's key type).
	KeyType string
	// PublicKeys delegate to existing keys instead of generating new ones.
	// Publish signs the role, so the matching private keys must be placed in
	// <keysDir>/<role>/ before the role's first publish.
	PublicKeys []crypto.PublicKey
	// Terminating stops a client's search at this role for names it covers.
	Terminating bool
}

// roleNameRE keeps role names usable as file names (V.<role>.json and the
// key directory) and as URL path segments without escaping.
var roleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Delegate creates the delegated targets role with its keys, delegated from
// opts.Parent for opts.Paths. The delegation and the new (empty) role are
// published by the next Publish.
func (r *Repo) Delegate(role string, opts DelegateOptions) ([]string, error) {
	var ids []string
	err := r.edit(func() (err error) {
		ids, err = r.delegate(role, opts)
		return err
	})
	return ids, err
}

func (r *Repo) delegate(role string, opts DelegateOptions) ([]string, error) {
	if !roleNameRE.MatchString(role) || isTopLevel(role) || role == retiredDir {
		return nil, fmt.Errorf("delegate: invalid role name %q: use letters, digits, '.', '_' and '-', and none of root, targets, snapshot, timestamp, %s", role, retiredDir)
	}
	if r.hasRole(role) {
		return nil, fmt.Errorf("delegate: role %s already exists", role)
	}
	if opts.Parent == "" {
		opts.Parent = metadata.TARGETS
	}
	parent, ok := r.roles[opts.Parent]
	if !ok {
		return nil, fmt.Errorf("delegate %s: no parent role %q", role, opts.Parent)
	}
	if len(opts.Paths) == 0 {
		return nil, fmt.Errorf("delegate %s: no paths: a role must be delegated at least one target name pattern", role)
	}
	for _, p := range opts.Paths {
		if err := checkPathPattern(p); err != nil {
			return nil, fmt.Errorf("delegate %s: %w", role, err)
		}
	}
	if opts.Threshold == 0 {
		opts.Threshold = 1
	}
	if opts.KeyType == "" {
		opts.KeyType = r.settings.KeyType
	}
	if err := checkKeyType(opts.KeyType); err != nil {
		return nil, fmt.Errorf("delegate %s: %w", role, err)
	}
	n := opts.Keys
	if len(opts.PublicKeys) > 0 {
		n = len(opts.PublicKeys)
	} else if n == 0 {
		n = opts.Threshold
	}
	if opts.Threshold < 1 || opts.Threshold > n {
		return nil, fmt.Errorf("delegate %s: threshold %d with %d key(s): need 1 <= threshold <= keys", role, opts.Threshold, n)
	}

	var keys []*metadata.Key
	if len(opts.PublicKeys) > 0 {
		for _, pk := range opts.PublicKeys {
			k, err := metadata.KeyFromPublicKey(pk)
			if err != nil {
				return nil, fmt.Errorf("delegate %s: %w", role, err)
			}
			keys = append(keys, k)
		}
	} else {
		for range n {
			k, err := r.keys.create(role, opts.KeyType)
			if err != nil {
				return nil, fmt.Errorf("delegate %s: %w", role, err)
			}
			keys = append(keys, k)
		}
	}
	if parent.Signed.Delegations == nil {
		parent.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	d := parent.Signed.Delegations
	if d.SuccinctRoles != nil {
		return nil, fmt.Errorf("delegate %s: %s uses succinct hash-bin delegations, which this tool does not edit", role, opts.Parent)
	}
	dr := metadata.DelegatedRole{Name: role, KeyIDs: []string{}, Threshold: opts.Threshold,
		Terminating: opts.Terminating, Paths: append([]string(nil), opts.Paths...)}
	d.Roles = append(d.Roles, dr)
	var ids []string
	for _, k := range keys {
		if err := parent.Signed.AddKey(k, role); err != nil {
			return nil, fmt.Errorf("delegate %s: %w", role, err)
		}
		id, _ := k.ID()
		ids = append(ids, id)
	}
	r.roles[role] = metadata.Targets(r.expires(role, r.now()))
	if err := r.saveRole(role); err != nil {
		return nil, fmt.Errorf("delegate %s: %w", role, err)
	}
	if err := r.saveRole(opts.Parent); err != nil {
		return nil, fmt.Errorf("delegate %s: %w", role, err)
	}
	return ids, nil
}

// KeysDir is where role's private keys are read from.
func (r *Repo) KeysDir(role string) string { return r.keys.roleDir(role) }

func checkPathPattern(p string) error {
	if p == "" || strings.HasPrefix(p, "/") {
		return fmt.Errorf("path pattern %q: must be a non-empty target name pattern without a leading '/'", p)
	}
	if _, err := filepath.Match(p, ""); errors.Is(err, filepath.ErrBadPattern) {
		return fmt.Errorf("path pattern %q: %w", p, err)
	}
	return nil
}
