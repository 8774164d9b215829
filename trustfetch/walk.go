package trustfetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap"
)

// maxRoles bounds the targets roles one refresh may load: a hash-bin
// delegation with bit_length 32 would otherwise name four billion roles.
const maxRoles = 1 << 16

type roleRef struct{ name, parent string }

var topLevel = map[string]bool{metadata.ROOT: true, metadata.TIMESTAMP: true, metadata.SNAPSHOT: true, metadata.TARGETS: true}

// verifiedRole is a targets role verified by an earlier refresh, kept so
// that an unchanged role is not parsed and verified again: in a hash-bin
// repository one changed bin would otherwise cost re-verifying all of them.
type verifiedRole struct {
	entry  snapshotEntry // what snapshot.json recorded for it
	parent string
	// delegator identifies what the role was verified against: the root's
	// version for the top-level role, else the hash of the delegating
	// role's delegations (keys, threshold, names).
	delegator string
	seg       *segment
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

// walker loads and verifies every targets role reachable from the
// top-level role, whatever the delegation paths: the index resolves names
// through the delegations itself (Index.resolve).
type walker struct {
	root     *metadata.Metadata[metadata.RootType]
	snapshot *metadata.Metadata[metadata.SnapshotType]
	prev     map[string]verifiedRole // from the last successful refresh
	next     map[string]verifiedRole // for the next one
	fetch    *tufFetcher
	metaDir  string // where verified roles persist between refreshes
	// verifiedDir keeps them in compact form, for a restart (see
	// encodeVerified).
	verifiedDir string
	consistent  bool
	maxSize     int64
	now         time.Time
	vs          *verifiers
	log         *zap.Logger
	// fetched counts the bytes of the roles downloaded.
	fetched atomic.Int64
	abandon atomic.Bool // loadAll returned: roles verified ahead are not needed
}

// loadAll visits every role reachable from the top-level targets role, in
// go-tuf's pre-order depth-first order, and returns their segments, the
// top-level role's first.
func (w *walker) loadAll(ctx context.Context) ([]*segment, error) {
	var segs []*segment
	at := map[string]int{}
	checked := map[roleRef]bool{}
	// The children of a role are verified ahead, on every core; the walk
	// takes their results in its own order.
	ahead := map[roleRef]*loading{}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	defer func() {
		w.abandon.Store(true) // what is not started yet will not be needed
		for _, l := range ahead {
			<-l.done // nothing outlives the walk
		}
	}()
	stack := []roleRef{{metadata.TARGETS, metadata.ROOT}}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ref := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if ref.parent != metadata.ROOT && topLevel[ref.name] {
			return nil, fmt.Errorf("role %q delegates to %q, a name reserved for a top-level role", ref.parent, ref.name)
		}
		meta, ok := w.snapshot.Signed.Meta[ref.name+".json"]
		if !ok {
			return nil, fmt.Errorf("role %q, delegated by %q, is not listed in snapshot.json", ref.name, ref.parent)
		}
		del, delID, err := w.delegator(ref, segs, at)
		if err != nil {
			return nil, fmt.Errorf("verify role %q (delegated by %q): %w", ref.name, ref.parent, err)
		}
		if i, ok := at[ref.name]; ok {
			// Resolution finds a role by name whichever delegator led to
			// it first; reached through another delegator, it must satisfy
			// that one's keys too.
			if !checked[ref] {
				if w.next[ref.name].delegator != delID {
					if _, err := w.verifyStored(ref, meta, del); err != nil {
						return nil, fmt.Errorf("role %q is delegated by %q too, but does not verify with its keys: %w", ref.name, ref.parent, err)
					}
				}
				checked[ref] = true
			}
			_ = i
			continue
		}
		if len(segs) >= maxRoles {
			return nil, fmt.Errorf("the delegation graph has more than %d roles", maxRoles)
		}
		entry := entryOf(meta)
		var seg *segment
		if pv, seen := w.prev[ref.name]; seen && pv.entry == entry && pv.parent == ref.parent && pv.delegator == delID {
			// The snapshot names the very file verified before, and it was
			// verified against the same delegation.
			seg = pv.seg
		} else if l := ahead[ref]; l != nil {
			<-l.done
			delete(ahead, ref)
			if seg, err = l.seg, l.err; err != nil {
				return nil, err
			}
		} else if seg, err = w.load(ref, meta, del, entry, delID); err != nil {
			return nil, err
		}
		w.next[ref.name] = verifiedRole{entry: entry, parent: ref.parent, delegator: delID, seg: seg}
		at[ref.name] = len(segs)
		segs = append(segs, seg)
		checked[ref] = true
		children, err := delegatedRoles(seg.deleg, maxRoles-len(segs))
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", ref.name, err)
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, roleRef{children[i], ref.name})
		}
		w.loadAhead(ahead, sem, segs, at, ref.name, children)
	}
	return segs, nil
}

// loading is a role being verified ahead of the walk.
type loading struct {
	done chan struct{}
	seg  *segment
	err  error
}

// loadAhead starts verifying the children of parent that the walk will
// load (not reused, not loaded yet) on goroutines bounded by sem.
func (w *walker) loadAhead(ahead map[roleRef]*loading, sem chan struct{}, segs []*segment, at map[string]int, parent string, children []string) {
	for _, name := range children {
		ref := roleRef{name, parent}
		meta, ok := w.snapshot.Signed.Meta[name+".json"]
		if _, loaded := at[name]; loaded || !ok || topLevel[name] || ahead[ref] != nil {
			continue
		}
		del, delID, err := w.delegator(ref, segs, at)
		if err != nil {
			continue // the walk reports it
		}
		entry := entryOf(meta)
		if pv, seen := w.prev[name]; seen && pv.entry == entry && pv.parent == parent && pv.delegator == delID {
			continue
		}
		l := &loading{done: make(chan struct{})}
		ahead[ref] = l
		go func() {
			defer close(l.done)
			sem <- struct{}{}
			defer func() { <-sem }()
			if w.abandon.Load() {
				l.err = errors.New("walk abandoned")
				return
			}
			l.seg, l.err = w.load(ref, meta, del, entry, delID)
		}()
	}
}

// delegator returns what ref is verified against, and an identity of it.
func (w *walker) delegator(ref roleRef, segs []*segment, at map[string]int) (delegator, string, error) {
	if ref.parent == metadata.ROOT {
		d, err := delegatorFromRoot(w.root)
		return d, fmt.Sprintf("root v%d", w.root.Signed.Version), err
	}
	p := segs[at[ref.parent]]
	d, err := delegatorFor(p.deleg, ref.name)
	return d, hex.EncodeToString(p.delegHash[:]), err
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

// load takes a role verified before a restart if the state directory
// kept it for this very snapshot entry and delegator; else it verifies the
// stored copy if that is still the version snapshot names, else downloads,
// verifies and persists it: the same policy go-tuf applies to the top-level
// roles.
func (w *walker) load(ref roleRef, meta *metadata.MetaFiles, del delegator, entry snapshotEntry, delID string) (*segment, error) {
	keep := func(seg *segment) {
		vr := verifiedRole{entry: entry, parent: ref.parent, delegator: delID, seg: seg}
		b, err := encodeVerified(vr)
		if err == nil {
			err = writeFileCache(w.compactPath(ref.name), b)
		}
		if err != nil {
			w.log.Debug("cannot keep the verified role for a restart", zap.String("role", ref.name), zap.Error(err))
		}
	}
	if b, err := readFileBounded(w.compactPath(ref.name), 4*w.maxSize); err == nil {
		vr, err := decodeVerified(b)
		if err == nil && vr.entry == entry && vr.parent == ref.parent && vr.delegator == delID && vr.seg.role == ref.name &&
			!w.now.After(vr.seg.expires) {
			return vr.seg, nil
		}
	}
	if seg, err := w.verifyStored(ref, meta, del); err == nil {
		keep(seg)
		return seg, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
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
	w.fetched.Add(int64(len(b)))
	seg, err := w.vs.verifyTargetsRole(b, ref.name, meta, del, w.now)
	if err != nil {
		return nil, fmt.Errorf("verify role %q (delegated by %q): %w", ref.name, ref.parent, err)
	}
	// Not synced: the rollback protection is in the snapshot and the
	// timestamp; a torn copy fails verification and is downloaded again.
	if err := writeFileCache(w.storedPath(ref.name), b); err != nil {
		return nil, fmt.Errorf("persist role %q: %w", ref.name, err)
	}
	keep(seg)
	return seg, nil
}

func (w *walker) compactPath(role string) string {
	return filepath.Join(w.verifiedDir, url.PathEscape(role))
}

func (w *walker) storedPath(role string) string {
	return filepath.Join(w.metaDir, url.PathEscape(role)+".json")
}

// verifyStored verifies the copy of a role in the state directory.
func (w *walker) verifyStored(ref roleRef, meta *metadata.MetaFiles, del delegator) (*segment, error) {
	b, err := readFileBounded(w.storedPath(ref.name), w.maxSize)
	if err != nil {
		return nil, err
	}
	return w.vs.verifyTargetsRole(b, ref.name, meta, del, w.now)
}
