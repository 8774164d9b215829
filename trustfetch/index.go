package trustfetch

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Versions are the metadata versions an Index was built from.
type Versions struct {
	Root, Timestamp, Snapshot, Targets int64
}

// Index is an immutable, verified view of a trust repository: every
// target the delegation graph vouches for, by name and by sha256.
// Lookups are O(1) and do not allocate. An Index is never modified after
// it is built, so it may be shared freely.
type Index struct {
	// targets is sorted by SHA256 then Name so that all targets with one
	// hash are adjacent: byDigest hands out sub-slices of it.
	targets  []Target
	byName   map[string]int32
	byDigest map[string][]Target

	versions    Versions
	expires     time.Time
	expiresRole string
	// delegatedExpires is the earliest expiry among the delegated roles,
	// kept so an unchanged snapshot can reuse this index (see refresh).
	delegatedExpires     time.Time
	delegatedExpiresRole string
	// rolesExpires is the earliest expiry among the snapshot, top-level
	// targets and delegated roles, and snapshotMeta what the timestamp
	// recorded for that snapshot: a new timestamp naming the same snapshot
	// reuses this index without loading any role (see refreshTimestamp).
	rolesExpires     time.Time
	rolesExpiresRole string
	snapshotMeta     snapshotEntry
	consistent       bool // root consistent_snapshot: targets are hash-prefixed
}

// newIndex builds the lookup tables; it takes ownership of targets.
func newIndex(targets []Target) *Index {
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Or(strings.Compare(a.SHA256, b.SHA256), strings.Compare(a.Name, b.Name))
	})
	ix := &Index{
		targets:  targets,
		byName:   make(map[string]int32, len(targets)),
		byDigest: make(map[string][]Target, len(targets)),
	}
	for i := 0; i < len(targets); {
		j := i + 1
		for j < len(targets) && targets[j].SHA256 == targets[i].SHA256 {
			j++
		}
		// Full slice expression: a caller appending to the result must not
		// overwrite the neighbouring digest's targets.
		ix.byDigest[targets[i].SHA256] = targets[i:j:j]
		for k := i; k < j; k++ {
			ix.byName[targets[k].Name] = int32(k)
		}
		i = j
	}
	return ix
}

// withMetadata returns a copy of ix sharing its (immutable) tables.
func (ix *Index) withMetadata() *Index {
	c := *ix
	return &c
}

// Lookup returns the target with this name.
func (ix *Index) Lookup(name string) (Target, bool) {
	i, ok := ix.byName[name]
	if !ok {
		return Target{}, false
	}
	return ix.targets[i], true
}

// ByDigest returns every target whose sha256 is sha256hex (lowercase hex;
// a "sha256:" prefix is accepted). The slice is shared: do not modify it.
func (ix *Index) ByDigest(sha256hex string) []Target {
	return ix.byDigest[strings.TrimPrefix(sha256hex, "sha256:")]
}

// Versions returns the metadata versions the index was built from.
func (ix *Index) Versions() Versions { return ix.versions }

// Expires returns the earliest expiry among the root, timestamp, snapshot,
// targets and every delegated targets role the index was built from. From
// that instant on the repository vouches for nothing until a refresh
// succeeds.
func (ix *Index) Expires() time.Time { return ix.expires }

// Len returns the number of targets.
func (ix *Index) Len() int { return len(ix.targets) }

// Names returns every target name, sorted.
func (ix *Index) Names() []string {
	names := make([]string, len(ix.targets))
	for i := range ix.targets {
		names[i] = ix.targets[i].Name
	}
	slices.Sort(names)
	return names
}
