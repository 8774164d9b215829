package trustfetch

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Versions are the metadata versions an Index was built from.
type Versions struct {
	Root, Timestamp, Snapshot, Targets int64
}

// maxDelegations is how many roles one name's resolution may visit, as in
// go-tuf's client (config.MaxDelegations).
const maxDelegations = 32

// Index is an immutable, verified view of a trust repository: every
// target the delegation graph vouches for, by name and by sha256.
// An Index is never modified after it is built, so it may be shared freely.
//
// It keeps the verified content of every targets role as it is (a segment
// per role) and resolves a name when asked, exactly as a TUF client does:
// a pre-order depth-first walk from the top-level role through the
// delegations whose paths (or hash bin) cover the name, the first role that
// lists it being authoritative. So a role cannot vouch for a name outside
// its delegated paths, and one changed role costs only that role: the
// other segments are shared with the previous index.
type Index struct {
	segs []*segment // segs[0] is the top-level targets role
	// kids[i][j] is the segment of segs[i]'s j-th delegated role (explicit
	// roles in order, or hash bin j of succinct roles); -1: not loaded.
	kids [][]int32
	// flat: an index of targets another verifier resolved (NewIndex); the
	// segments (one per role) hold distinct names and delegate nothing.
	flat bool
	// live[i] marks, bit per entry, the entries of segs[i] that are what
	// their name resolves to and have a sha256: what the index vouches for.
	live  [][]uint64
	count int
	// byDigest is every live entry, sorted by the first 8 bytes of its sha256.
	byDigest []digestRef

	versions    Versions
	expires     time.Time
	expiresRole string
	// rolesExpires is the earliest expiry among the snapshot and every
	// targets role, and snapshotMeta what the timestamp recorded for that
	// snapshot: a new timestamp naming the same snapshot reuses this index
	// without loading any role (see refreshTimestamp).
	rolesExpires     time.Time
	rolesExpiresRole string
	snapshotMeta     snapshotEntry
	consistent       bool // root consistent_snapshot: targets are hash-prefixed
}

type digestRef struct {
	prefix   uint64
	seg, ent uint32
}

// newIndex builds a flat index from resolved targets; it takes ownership of
// targets.
func newIndex(targets []Target) *Index {
	byRole := map[string]*segmentBuilder{}
	var roles []string
	for i := range targets {
		t := &targets[i]
		b := byRole[t.Role]
		if b == nil {
			b = newSegmentBuilder(t.Role, 0)
			byRole[t.Role] = b
			roles = append(roles, t.Role)
		}
		sum, err := hex.DecodeString(t.SHA256)
		if err != nil || len(sum) != sha256.Size {
			sum = nil
		}
		b.add([]byte(t.Name), t.Length, sum, t.Custom)
	}
	slices.Sort(roles)
	ix := &Index{flat: true}
	for _, r := range roles {
		ix.segs = append(ix.segs, byRole[r].done())
	}
	ix.kids = make([][]int32, len(ix.segs))
	ix.resolveAll()
	return ix
}

// newWalkedIndex builds the index of segments loaded by a delegation walk
// (segs[0] the top-level role). prev, if it was built from the same roles
// with the same delegations, lets only the changed segments be resolved
// again.
func newWalkedIndex(segs []*segment, prev *Index) *Index {
	ix := &Index{segs: segs}
	ix.link()
	if prev != nil && !prev.flat && ix.incremental(prev) {
		return ix
	}
	ix.resolveAll()
	return ix
}

// link fills kids from the delegations of each segment.
func (ix *Index) link() {
	at := make(map[string]int32, len(ix.segs))
	for i, s := range ix.segs {
		at[s.role] = int32(i)
	}
	ix.kids = make([][]int32, len(ix.segs))
	for i, s := range ix.segs {
		d := s.deleg
		if d == nil {
			continue
		}
		var names []string
		switch {
		case d.Roles != nil:
			names = make([]string, len(d.Roles))
			for j := range d.Roles {
				names[j] = d.Roles[j].Name
			}
		case d.SuccinctRoles != nil && d.SuccinctRoles.BitLength >= 1 && d.SuccinctRoles.BitLength <= 32:
			names = d.SuccinctRoles.GetRoles()
		}
		k := make([]int32, len(names))
		for j, n := range names {
			if c, ok := at[n]; ok {
				k[j] = c
			} else {
				k[j] = -1
			}
		}
		ix.kids[i] = k
	}
}

// resolve finds the entry name resolves to, as go-tuf's
// preOrderDepthFirstWalk does: the first role listing the name in a
// pre-order walk of the delegations that cover it, visiting at most
// maxDelegations roles, a terminating delegation ending the search.
func (ix *Index) resolve(name string) (seg, ent int, ok bool) {
	if ix.flat {
		for s, sg := range ix.segs {
			if e, ok := sg.find(name); ok {
				return s, e, true
			}
		}
		return 0, 0, false
	}
	var stackBuf, visitedBuf, childBuf [maxDelegations + 1]int32
	stack, visited := append(stackBuf[:0], 0), visitedBuf[:0]
	for len(visited) <= maxDelegations && len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s < 0 || slices.Contains(visited, s) {
			continue
		}
		sg := ix.segs[s]
		if e, ok := sg.find(name); ok {
			return int(s), e, true
		}
		visited = append(visited, s)
		d := sg.deleg
		if d == nil {
			continue
		}
		children := childBuf[:0]
		switch {
		case d.Roles != nil:
			for j := range d.Roles {
				if ok, _ := d.Roles[j].IsDelegatedPath(name); !ok {
					continue
				}
				children = append(children, ix.kids[s][j])
				if d.Roles[j].Terminating {
					stack = stack[:0]
					break
				}
			}
		case d.SuccinctRoles != nil && len(ix.kids[s]) > 0:
			// Succinct roles are all terminating (TAP 15).
			sum := sha256.Sum256([]byte(name))
			bin := binary.BigEndian.Uint32(sum[:4]) >> (32 - d.SuccinctRoles.BitLength)
			stack = stack[:0]
			children = append(children, ix.kids[s][bin])
		}
		// The buffers grow past maxDelegations+1 (on the heap) only for a
		// role with that many matching delegations.
		for j := len(children) - 1; j >= 0; j-- {
			stack = append(stack, children[j])
		}
	}
	return 0, 0, false
}

// resolveAll marks every live entry and builds the digest table, the
// segments shared out over every core.
func (ix *Index) resolveAll() {
	ix.live = make([][]uint64, len(ix.segs))
	counts := make([]int, len(ix.segs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ix.segs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := int(next.Add(1) - 1); s < len(ix.segs); s = int(next.Add(1) - 1) {
				sg := ix.segs[s]
				live := make([]uint64, (len(sg.ents)+63)/64)
				for e := range sg.ents {
					if !sg.vouches(e) {
						continue
					}
					if rs, re, ok := ix.resolve(sg.name(e)); ok && rs == s && re == e {
						live[e/64] |= 1 << (e % 64)
						counts[s]++
					}
				}
				ix.live[s] = live
			}
		}()
	}
	wg.Wait()
	ix.count = 0
	for _, c := range counts {
		ix.count += c
	}
	ix.byDigest = make([]digestRef, 0, ix.count)
	for s := range ix.segs {
		ix.byDigest = ix.appendDigests(ix.byDigest, s)
	}
	sortDigests(ix.byDigest)
}

func (ix *Index) appendDigests(refs []digestRef, s int) []digestRef {
	sg := ix.segs[s]
	for w, word := range ix.live[s] {
		for word != 0 {
			e := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			refs = append(refs, digestRef{prefix: binary.BigEndian.Uint64(sg.ents[e].sha256[:8]), seg: uint32(s), ent: uint32(e)})
		}
	}
	return refs
}

// sortDigests sorts by prefix (then segment). sha256 prefixes are
// uniform, so a large table is first distributed by its top 16 bits.
func sortDigests(refs []digestRef) {
	if len(refs) < 1<<14 {
		sortDigestRefs(refs)
		return
	}
	var start [1<<16 + 1]int
	for _, r := range refs {
		start[r.prefix>>48+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	out := make([]digestRef, len(refs))
	next := start
	for _, r := range refs {
		b := r.prefix >> 48
		out[next[b]] = r
		next[b]++
	}
	for b := 0; b < 1<<16; b++ {
		sortDigestRefs(out[start[b]:start[b+1]])
	}
	copy(refs, out)
}

func sortDigestRefs(refs []digestRef) {
	slices.SortFunc(refs, func(a, b digestRef) int {
		switch {
		case a.prefix < b.prefix:
			return -1
		case a.prefix > b.prefix:
			return 1
		}
		return int(a.seg) - int(b.seg)
	})
}

// incremental builds ix from prev when they have the same roles in the same
// order and the same delegations everywhere: then only names listed by a
// changed role can resolve differently, and only those are resolved again.
// It reports false (ix untouched) when that does not hold.
func (ix *Index) incremental(prev *Index) bool {
	if len(prev.segs) != len(ix.segs) {
		return false
	}
	var changed []int
	for i, s := range ix.segs {
		p := prev.segs[i]
		if p == s {
			continue
		}
		if p.role != s.role || p.delegHash != s.delegHash {
			return false
		}
		changed = append(changed, i)
	}
	ix.live = slices.Clone(prev.live)
	ix.count = prev.count
	copied := map[int]bool{}
	for _, i := range changed {
		ix.live[i] = make([]uint64, (len(ix.segs[i].ents)+63)/64)
		copied[i] = true
	}
	// Every name listed by a changed role, before or after the change.
	names := map[string]bool{}
	for _, i := range changed {
		for _, sg := range []*segment{prev.segs[i], ix.segs[i]} {
			for e := range sg.ents {
				names[sg.name(e)] = true
			}
		}
	}
	for name := range names {
		if s, e, ok := prev.resolve(name); ok && prev.isLive(s, e) {
			if !copied[s] {
				ix.live[s], copied[s] = slices.Clone(ix.live[s]), true
			}
			if !slices.Contains(changed, s) {
				ix.live[s][e/64] &^= 1 << (e % 64)
			}
			ix.count--
		}
		if s, e, ok := ix.resolve(name); ok && ix.segs[s].vouches(e) {
			if !copied[s] {
				ix.live[s], copied[s] = slices.Clone(ix.live[s]), true
			}
			ix.live[s][e/64] |= 1 << (e % 64)
			ix.count++
		}
	}
	// The digest table: the previous one without the entries of the
	// segments whose live bits changed, merged with theirs.
	var fresh []digestRef
	for s := range copied {
		fresh = ix.appendDigests(fresh, s)
	}
	sortDigests(fresh)
	ix.byDigest = make([]digestRef, 0, ix.count)
	old := prev.byDigest
	for len(old) > 0 || len(fresh) > 0 {
		switch {
		case len(old) > 0 && copied[int(old[0].seg)]:
			old = old[1:]
		case len(fresh) == 0 || (len(old) > 0 && old[0].prefix <= fresh[0].prefix):
			ix.byDigest, old = append(ix.byDigest, old[0]), old[1:]
		default:
			ix.byDigest, fresh = append(ix.byDigest, fresh[0]), fresh[1:]
		}
	}
	return true
}

func (ix *Index) isLive(s, e int) bool { return ix.live[s][e/64]&(1<<(e%64)) != 0 }

// withMetadata returns a copy of ix sharing its (immutable) tables.
func (ix *Index) withMetadata() *Index {
	c := *ix
	return &c
}

// Lookup returns the target with this name.
func (ix *Index) Lookup(name string) (Target, bool) {
	s, e, ok := ix.resolve(name)
	if !ok || !ix.segs[s].vouches(e) {
		return Target{}, false
	}
	return ix.segs[s].target(e), true
}

// ByDigest returns every target whose sha256 is sha256hex (lowercase hex;
// a "sha256:" prefix is accepted).
func (ix *Index) ByDigest(sha256hex string) []Target {
	var sum [32]byte
	h := strings.TrimPrefix(sha256hex, "sha256:")
	if len(h) != 64 {
		return nil
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return nil
	}
	p := binary.BigEndian.Uint64(sum[:8])
	i := sort.Search(len(ix.byDigest), func(i int) bool { return ix.byDigest[i].prefix >= p })
	var out []Target
	for ; i < len(ix.byDigest) && ix.byDigest[i].prefix == p; i++ {
		r := ix.byDigest[i]
		if sg := ix.segs[r.seg]; sg.ents[r.ent].sha256 == sum {
			out = append(out, sg.target(int(r.ent)))
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Versions returns the metadata versions the index was built from.
func (ix *Index) Versions() Versions { return ix.versions }

// Expires returns the earliest expiry among the root, timestamp, snapshot,
// targets and every delegated targets role the index was built from. From
// that instant on the repository vouches for nothing until a refresh
// succeeds.
func (ix *Index) Expires() time.Time { return ix.expires }

// Len returns the number of targets.
func (ix *Index) Len() int { return ix.count }

// Names returns every target name, sorted.
func (ix *Index) Names() []string { return ix.NamesWithPrefix("") }

// NamesWithPrefix returns the target names that start with prefix, sorted.
func (ix *Index) NamesWithPrefix(prefix string) []string {
	var names []string
	ix.each(func(sg *segment, e int) {
		if n := sg.name(e); strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	})
	slices.Sort(names)
	return names
}

// EachMediaType calls f with every target's name and custom "mediaType",
// in no particular order, without building Targets.
func (ix *Index) EachMediaType(f func(name, mediaType string)) {
	ix.each(func(sg *segment, e int) {
		mt := ""
		if c := sg.ents[e].custom &^ noSHA256; c > 0 {
			mt = sg.customs[c-1].mediaType
		}
		f(sg.name(e), mt)
	})
}

func (ix *Index) each(f func(sg *segment, e int)) {
	for s, live := range ix.live {
		for w, word := range live {
			for word != 0 {
				f(ix.segs[s], w*64+bits.TrailingZeros64(word))
				word &= word - 1
			}
		}
	}
}

// roleExpiries returns the earliest expiry among the targets roles of ix.
func (ix *Index) roleExpiries() (top time.Time, delegated time.Time, delegatedRole string) {
	for i, sg := range ix.segs {
		if i == 0 {
			top = sg.expires
			continue
		}
		delegated, delegatedRole = earlier(delegated, delegatedRole, sg.expires, sg.role)
	}
	return top, delegated, delegatedRole
}

// unresolvedCount counts the entries the index does not vouch for.
type unresolvedCount struct {
	excluded, noSHA256 int
	sample             []string
}

func (ix *Index) unresolved() unresolvedCount {
	var n unresolvedCount
	for s, sg := range ix.segs {
		for e := range sg.ents {
			switch {
			case ix.isLive(s, e):
				continue
			case !sg.vouches(e):
				n.noSHA256++
			default:
				n.excluded++
			}
			if len(n.sample) < 5 {
				n.sample = append(n.sample, sg.name(e))
			}
		}
	}
	return n
}
