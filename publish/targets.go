package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Target is one entry of a targets role's working copy.
type Target struct {
	Role   string
	Name   string
	Length int64
	// SHA256 is the lowercase hex sha256 of the target's bytes; for an image
	// that is the manifest digest without its "sha256:" prefix.
	SHA256 string
	// Custom is the target's custom metadata (raw JSON) or nil.
	Custom json.RawMessage
}

// maxDelegationDepth bounds role lookups the way a client's MaxDelegations
// does, so a delegation cycle cannot loop forever.
const maxDelegationDepth = 32

// AddTarget adds (or replaces) target name in role's working copy. role ""
// means RoleFor(name). The bytes are not stored; use AddTargetFile for that.
// The change is published by the next Publish.
func (r *Repo) AddTarget(role, name string, length int64, sha256hex string, custom map[string]any) (Target, error) {
	var t Target
	err := r.edit(func() (err error) {
		if t, err = r.addTarget(role, name, length, sha256hex, custom); err != nil {
			return err
		}
		return r.saveRoles(map[string]bool{t.Role: true})
	})
	return t, err
}

func (r *Repo) addTarget(role, name string, length int64, sha256hex string, custom map[string]any) (Target, error) {
	if role == "" {
		role = r.RoleFor(name)
	}
	if err := checkTargetName(name); err != nil {
		return Target{}, err
	}
	if length < 0 {
		return Target{}, fmt.Errorf("add %s: negative length %d", name, length)
	}
	sum, err := hex.DecodeString(sha256hex)
	if err != nil || len(sum) != sha256.Size || strings.ToLower(sha256hex) != sha256hex {
		return Target{}, fmt.Errorf("add %s: sha256 %q is not 64 lowercase hex digits", name, sha256hex)
	}
	md, ok, err := r.role(role)
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", name, err)
	}
	if !ok {
		return Target{}, fmt.Errorf("add %s: no role %q (roles: %s)", name, role, strings.Join(r.RoleNames(), ", "))
	}
	tf := metadata.TargetFile()
	tf.Path = name
	tf.Length = length
	tf.Hashes = metadata.Hashes{"sha256": sum}
	if len(custom) > 0 {
		raw, err := json.Marshal(custom)
		if err != nil {
			return Target{}, fmt.Errorf("add %s: encode custom metadata: %w", name, err)
		}
		msg := json.RawMessage(raw)
		tf.Custom = &msg
	}
	prev, had := md.Signed.Targets[name]
	md.Signed.Targets[name] = tf
	isBin := r.isBin(role)
	if isBin {
		r.touchBin(role)
	}
	// A TUF client searches roles in a fixed order and stops at the first
	// that lists the name, or at the first whose delegation does not cover
	// it: an entry the client would never reach is a mistake worth refusing.
	var got string
	if isBin {
		got, ok, err = r.binLookup(name, role)
	} else {
		got, ok, err = r.lookup(name)
	}
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", name, err)
	}
	if !ok || got != role {
		if had {
			md.Signed.Targets[name] = prev
		} else {
			delete(md.Signed.Targets, name)
		}
		if !ok {
			return Target{}, fmt.Errorf("add %s: role %s is not delegated this name, so clients would never find it there (%s)", name, role, r.delegationSummary(role))
		}
		return Target{}, fmt.Errorf("add %s: clients would find it in role %s first, which comes before %s; remove it there first", name, got, role)
	}
	return targetOf(role, name, tf), nil
}

// NewTarget is one entry for AddTargets.
type NewTarget struct {
	Name   string
	Length int64
	SHA256 string
	Custom map[string]any
}

// AddTargets adds many targets to role's working copy in one edit, saving
// each role once: adding n targets one by one rewrites the role n times.
// Nothing is staged if any target is refused.
func (r *Repo) AddTargets(role string, ts []NewTarget) ([]Target, error) {
	var out []Target
	err := r.edit(func() error {
		touched := map[string]bool{}
		for _, nt := range ts {
			t, err := r.addTarget(role, nt.Name, nt.Length, nt.SHA256, nt.Custom)
			if err != nil {
				if lerr := r.load(); lerr != nil { // drop what this call staged in memory
					return errors.Join(err, lerr)
				}
				return err
			}
			touched[t.Role] = true
			out = append(out, t)
		}
		if err := r.saveRoles(touched); err != nil {
			return fmt.Errorf("add %d targets: %w", len(ts), err)
		}
		return nil
	})
	return out, err
}

// AddTargetFile adds target name with the bytes read from content, and stores
// them as targets/<dir>/<sha256>.<base> so clients can download the target
// (in-toto layouts, links, public keys, and image manifests for any TUF
// client). The content is streamed to disk while it is hashed.
func (r *Repo) AddTargetFile(role, name string, content io.Reader, custom map[string]any) (Target, error) {
	if err := checkTargetName(name); err != nil {
		return Target{}, err
	}
	dir, base := path.Split(name)
	destDir := filepath.Join(r.dir, targetsDirName, filepath.FromSlash(dir))
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", name, err)
	}
	f, err := os.CreateTemp(destDir, ".tmp-*")
	if err != nil {
		return Target{}, fmt.Errorf("add %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), content)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync() // the name is the content's hash, known only now: renameio cannot name it up front
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Target{}, fmt.Errorf("add %s: write target file: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(tmp, filepath.Join(destDir, sum+"."+base)); err != nil {
		return Target{}, fmt.Errorf("add %s: %w", name, err)
	}
	return r.AddTarget(role, name, n, sum, custom)
}

// RemoveTarget removes name from role's working copy, or from every role
// that lists it when role is "". It returns the roles it was removed from.
// Target files stay: older snapshots that clients may still hold refer to
// them.
func (r *Repo) RemoveTarget(role, name string) ([]string, error) {
	var from []string
	err := r.edit(func() (err error) {
		from, err = r.removeTarget(role, name)
		return err
	})
	return from, err
}

func (r *Repo) removeTarget(role, name string) ([]string, error) {
	var from []string
	candidates := r.RoleNames()
	if bin := r.BinFor(name); bin != "" {
		candidates = append(candidates, bin) // the only bin that may hold name
	}
	for _, rn := range candidates {
		if role != "" && rn != role {
			continue
		}
		md, _, err := r.role(rn)
		if err != nil {
			return from, fmt.Errorf("remove %s: %w", name, err)
		}
		if _, ok := md.Signed.Targets[name]; ok {
			delete(md.Signed.Targets, name)
			if r.isBin(rn) {
				r.touchBin(rn)
			}
			if err := r.saveRoles(map[string]bool{rn: true}); err != nil {
				return from, fmt.Errorf("remove %s: %w", name, err)
			}
			from = append(from, rn)
		}
	}
	if len(from) == 0 {
		if role != "" {
			if !r.hasRole(role) {
				return nil, fmt.Errorf("remove %s: no role %q", name, role)
			}
			return nil, fmt.Errorf("remove %s: not a target of role %s", name, role)
		}
		return nil, fmt.Errorf("remove %s: no role lists this target", name)
	}
	return from, nil
}

// Targets lists the working copy: every target of every role, sorted by role
// and name. A hash bin that cannot be read is left out; ListTargets says so.
func (r *Repo) Targets() []Target {
	out, _ := r.ListTargets()
	return out
}

// ListTargets lists the working copy: every target of every role and hash
// bin, sorted by role and name. With hash bins it reads every bin.
func (r *Repo) ListTargets() ([]Target, error) {
	var out []Target
	var errs []error
	roles := r.RoleNames()
	if sr := r.succinct(); sr != nil {
		roles = append(roles, sr.GetRoles()...)
	}
	for _, role := range roles {
		md, _, err := r.role(role)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for name, tf := range md.Signed.Targets {
			out = append(out, targetOf(role, name, tf))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].Name < out[j].Name
	})
	return out, errors.Join(errs...)
}

// Lookup finds name in the working copy the way a TUF client will once it is
// published: the first role in delegation search order that lists it.
// A hash bin that cannot be read counts as not listing it.
func (r *Repo) Lookup(name string) (Target, bool) {
	role, ok, err := r.lookup(name)
	if err != nil || !ok {
		return Target{}, false
	}
	md, _, err := r.role(role)
	if err != nil {
		return Target{}, false
	}
	return targetOf(role, name, md.Signed.Targets[name]), true
}

// RoleNames lists the roles of the working copy, targets first, hash bins
// apart (see HashBins).
func (r *Repo) RoleNames() []string {
	names := make([]string, 0, len(r.roles))
	for n := range r.roles {
		if n != metadata.TARGETS {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return append([]string{metadata.TARGETS}, names...)
}

// RoleFor is the role a target is added to by default: following the first
// delegation that covers name at each level, the most specific role, or
// targets when nothing is delegated.
func (r *Repo) RoleFor(name string) string {
	if bin := r.BinFor(name); bin != "" {
		return bin // targets delegates nothing else; bins delegate nothing
	}
	role := metadata.TARGETS
	for range maxDelegationDepth {
		md, ok := r.roles[role] // hash bins delegate nothing further
		if !ok || md.Signed.Delegations == nil {
			break
		}
		d := md.Signed.Delegations
		next := ""
		for _, c := range d.GetRolesForTarget(name) {
			if r.hasRole(c.Name) {
				next = c.Name
				break
			}
		}
		if next == "" {
			break
		}
		role = next
	}
	return role
}

// binLookup is lookup in a repository whose targets delegates to hash
// bins, for a name just staged in bin staged: targets if it lists the
// name, else the one bin the name hashes to (bins are terminating),
// without reading staged again.
func (r *Repo) binLookup(name, staged string) (string, bool, error) {
	if _, ok := r.roles[metadata.TARGETS].Signed.Targets[name]; ok {
		return metadata.TARGETS, true, nil
	}
	bin := r.BinFor(name)
	if bin == staged {
		return bin, true, nil
	}
	md, _, err := r.role(bin)
	if err != nil {
		return "", false, err
	}
	_, ok := md.Signed.Targets[name]
	return bin, ok, nil
}

// lookup is go-tuf's pre-order depth-first delegation walk (updater
// preOrderDepthFirstWalk) over the working copy.
func (r *Repo) lookup(name string) (string, bool, error) {
	stack := []string{metadata.TARGETS}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) < maxDelegationDepth {
		role := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[role] {
			continue
		}
		md, ok, err := r.role(role)
		if err != nil {
			return "", false, err
		}
		if !ok {
			continue
		}
		if _, ok := md.Signed.Targets[name]; ok {
			return role, true, nil
		}
		visited[role] = true
		if md.Signed.Delegations == nil {
			continue
		}
		var children []string
		for _, c := range md.Signed.Delegations.GetRolesForTarget(name) {
			children = append(children, c.Name)
			if c.Terminating {
				stack = stack[:0]
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return "", false, nil
}

// delegationSummary says which names role may hold, for error messages.
func (r *Repo) delegationSummary(role string) string {
	parent, dr := r.delegationOf(role)
	if dr == nil {
		return "it is not delegated by any role"
	}
	if r.isBin(role) {
		return fmt.Sprintf("%s delegates each name to the one hash bin its sha256 selects", parent)
	}
	return fmt.Sprintf("%s delegates it %s", parent, strings.Join(dr.Paths, ", "))
}

// delegationOf finds the role that delegates role, and the delegation.
func (r *Repo) delegationOf(role string) (string, *metadata.DelegatedRole) {
	if sr := r.succinct(); sr != nil && sr.IsDelegatedRole(role) {
		return metadata.TARGETS, &metadata.DelegatedRole{Name: role, KeyIDs: sr.KeyIDs, Threshold: sr.Threshold}
	}
	for _, pn := range r.RoleNames() {
		d := r.roles[pn].Signed.Delegations
		if d == nil {
			continue
		}
		for i := range d.Roles {
			if d.Roles[i].Name == role {
				return pn, &d.Roles[i]
			}
		}
	}
	return "", nil
}

func targetOf(role, name string, tf *metadata.TargetFiles) Target {
	t := Target{Role: role, Name: name, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
	if tf.Custom != nil {
		t.Custom = *tf.Custom
	}
	return t
}

// checkTargetName keeps target names to what maps safely onto both a URL
// path and a file path: go-tuf builds the download URL by plain
// concatenation and this package writes <dir>/<hash>.<base> to disk.
func checkTargetName(name string) error {
	if name == "" {
		return errors.New("empty target name")
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("target name %q: empty, \".\" or \"..\" path segment", name)
		}
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(`\?#%"<>`, c) {
			return fmt.Errorf("target name %q: character %q is not allowed", name, c)
		}
	}
	return nil
}
