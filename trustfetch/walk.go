package trustfetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
	"go.uber.org/zap"
)

// maxRoles bounds the targets roles one refresh may load: a hash-bin
// delegation with bit_length 32 would otherwise name four billion roles.
const maxRoles = 1 << 16

type roleRef struct{ name, parent string }

var topLevel = map[string]bool{metadata.ROOT: true, metadata.TIMESTAMP: true, metadata.SNAPSHOT: true, metadata.TARGETS: true}

// verifiedRole is a delegated role verified by an earlier refresh, kept so
// that an unchanged role is not parsed and verified again: in a hash-bin
// repository one changed bin would otherwise cost re-verifying all of them.
type verifiedRole struct {
	entry  snapshotEntry // what snapshot.json recorded for it
	parent string
	md     *metadata.Metadata[metadata.TargetsType] // nil for the top-level role
}

// snapshotEntry is a comparable form of a snapshot meta entry.
type snapshotEntry struct {
	version, length int64
	hashes          string
}

func entryOf(m *metadata.MetaFiles) snapshotEntry {
	e := snapshotEntry{version: m.Version, length: m.Length}
	algs := slices.Sorted(maps.Keys(m.Hashes))
	for _, a := range algs {
		e.hashes += a + ":" + m.Hashes[a].String() + ";"
	}
	return e
}

// walker loads every delegated targets role of one refresh into the
// updater's trusted set. go-tuf has no way to list targets; it only
// resolves names one at a time, loading roles lazily.
type walker struct {
	tm         *trustedmetadata.TrustedMetadata // shares its Targets map with the updater
	prev       map[string]verifiedRole          // from the last successful refresh
	next       map[string]verifiedRole          // for the next one
	fetch      *tufFetcher
	metaDir    string // where verified roles persist between refreshes
	consistent bool
	maxSize    int64
	log        *zap.Logger
}

// loadAll visits every role reachable from the top-level targets role, in
// go-tuf's pre-order depth-first order, ignoring delegation paths, and
// returns each listed target name with the first role that lists it.
// Paths, hash prefixes and terminating delegations are applied afterwards
// by resolve, through go-tuf itself.
func (w *walker) loadAll(ctx context.Context) (map[string]string, error) {
	listed := make(map[string]string)
	loaded := map[string]bool{}
	checked := map[roleRef]bool{}
	unchanged := map[string]bool{}
	stack := []roleRef{{metadata.TARGETS, metadata.ROOT}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ref := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if ref.parent != metadata.ROOT && topLevel[ref.name] {
			// Its stored copy would overwrite go-tuf's state for that role.
			return nil, fmt.Errorf("role %q delegates to %q, a name reserved for a top-level role", ref.parent, ref.name)
		}
		if loaded[ref.name] {
			// go-tuf caches a role by name whichever delegator led to it
			// first; a name-by-name walk could reach it first through this
			// other delegator, so the role must satisfy this one's keys too.
			if !checked[ref] {
				if err := w.tm.Targets[ref.parent].VerifyDelegate(ref.name, w.tm.Targets[ref.name]); err != nil {
					return nil, fmt.Errorf("role %q is delegated by %q too, but does not verify with its keys: %w", ref.name, ref.parent, err)
				}
				checked[ref] = true
			}
			continue
		}
		if len(loaded) >= maxRoles {
			return nil, fmt.Errorf("the delegation graph has more than %d roles", maxRoles)
		}
		meta, ok := w.tm.Snapshot.Signed.Meta[ref.name+".json"]
		if !ok {
			return nil, fmt.Errorf("role %q, delegated by %q, is not listed in snapshot.json", ref.name, ref.parent)
		}
		entry := entryOf(meta)
		// A role verified before is still verified if its own snapshot
		// entry is the same and so are its delegators' up to the top-level
		// role (which go-tuf itself re-verifies against the root).
		pv, seen := w.prev[ref.name]
		same := seen && pv.entry == entry && pv.parent == ref.parent && (ref.parent == metadata.ROOT || unchanged[ref.parent])
		md := w.tm.Targets[ref.name] // the top-level role is loaded by updater.Refresh
		switch {
		case md != nil:
		case same:
			md = pv.md
			w.tm.Targets[ref.name] = md
		default:
			var err error
			if md, err = w.load(ref, meta); err != nil {
				return nil, err
			}
		}
		unchanged[ref.name] = same
		kept := md
		if ref.parent == metadata.ROOT {
			// updater.Refresh loads the top-level role every time, so only
			// its entry is needed; its parsed form (tens of MiB for a large
			// role) is not kept between refreshes.
			kept = nil
		}
		w.next[ref.name] = verifiedRole{entry: entry, parent: ref.parent, md: kept}
		loaded[ref.name], checked[ref] = true, true
		for name := range md.Signed.Targets {
			if _, ok := listed[name]; !ok {
				listed[name] = ref.name
			}
		}
		children, err := delegatedRoles(md.Signed.Delegations, maxRoles-len(loaded))
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", ref.name, err)
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, roleRef{children[i], ref.name})
		}
	}
	return listed, nil
}

// delegatedRoles names the roles d delegates to, in order, choosing
// between explicit and succinct roles the way go-tuf's GetRolesForTarget does.
func delegatedRoles(d *metadata.Delegations, room int) ([]string, error) {
	switch {
	case d == nil:
		return nil, nil
	case d.Roles != nil:
		if len(d.Roles) > room {
			return nil, fmt.Errorf("delegates to %d roles; at most %d more are allowed", len(d.Roles), room)
		}
		names := make([]string, len(d.Roles))
		for i := range d.Roles {
			names[i] = d.Roles[i].Name
		}
		return names, nil
	case d.SuccinctRoles != nil:
		bits := d.SuccinctRoles.BitLength
		if bits < 1 || bits > 32 {
			return nil, fmt.Errorf("succinct_roles bit_length %d is outside 1..32", bits)
		}
		if 1<<bits > room {
			return nil, fmt.Errorf("succinct_roles bit_length %d names %d roles; at most %d more are allowed", bits, 1<<bits, room)
		}
		return d.SuccinctRoles.GetRoles(), nil
	}
	return nil, nil
}

// load verifies a delegated role from the state directory if it is still
// the version snapshot names, else downloads, verifies and persists it;
// the same policy go-tuf applies to the top-level roles.
func (w *walker) load(ref roleRef, meta *metadata.MetaFiles) (*metadata.Metadata[metadata.TargetsType], error) {
	local := filepath.Join(w.metaDir, url.PathEscape(ref.name)+".json")
	if b, err := readFileBounded(local, w.maxSize); err == nil {
		md, err := w.tm.UpdateDelegatedTargets(b, ref.name, ref.parent)
		if err == nil {
			return md, nil
		}
		w.log.Debug("stored role is not current; downloading it", zap.String("role", ref.name), zap.Error(err))
	}
	file := url.PathEscape(ref.name) + ".json"
	if w.consistent {
		file = fmt.Sprintf("%d.%s", meta.Version, file)
	}
	b, err := w.fetch.DownloadFile(w.fetch.base+file, meta.Length, 0)
	if err != nil {
		return nil, fmt.Errorf("download role %q: %w", ref.name, err)
	}
	md, err := w.tm.UpdateDelegatedTargets(b, ref.name, ref.parent)
	if err != nil {
		return nil, fmt.Errorf("verify role %q (delegated by %q): %w", ref.name, ref.parent, err)
	}
	if err := writeFileAtomic(local, b); err != nil {
		return nil, fmt.Errorf("persist role %q: %w", ref.name, err)
	}
	return md, nil
}

// resolved is what resolve found.
type resolution struct {
	targets  []Target
	excluded []string // listed by a role that is not trusted for the name
	noSHA256 []string // vouched for without a usable sha256
}

// resolve asks go-tuf for every listed name, so that delegation paths,
// path_hash_prefixes, succinct roles and terminating delegations decide
// exactly as a TUF client would: a role cannot add names outside its paths.
func resolve(up *updater.Updater, tm *trustedmetadata.TrustedMetadata, listed map[string]string) (resolution, error) {
	res := resolution{targets: make([]Target, 0, len(listed))}
	for name, role := range listed {
		tf, err := up.GetTargetInfo(name)
		if err != nil {
			// go-tuf reports an unresolvable name with an untyped error;
			// anything else is a failure to load or verify a role.
			if err.Error() == "target "+name+" not found" {
				res.excluded = append(res.excluded, name)
				continue
			}
			return res, fmt.Errorf("resolve target %q: %w", name, err)
		}
		if tm.Targets[role].Signed.Targets[name] != tf {
			role = ownerOf(tm, name, tf)
		}
		h := tf.Hashes["sha256"]
		if len(h) != sha256.Size {
			res.noSHA256 = append(res.noSHA256, name)
			continue
		}
		var custom json.RawMessage
		if tf.Custom != nil {
			custom = *tf.Custom
		}
		res.targets = append(res.targets, Target{Name: name, Length: tf.Length, SHA256: hex.EncodeToString(h), Custom: custom, Role: role})
	}
	return res, nil
}

// ownerOf finds the role whose entry go-tuf returned.
func ownerOf(tm *trustedmetadata.TrustedMetadata, name string, tf *metadata.TargetFiles) string {
	for role, md := range tm.Targets {
		if md.Signed.Targets[name] == tf {
			return role
		}
	}
	return ""
}
