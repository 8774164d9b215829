package trustfetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// segment is the verified content of one targets role, kept compactly: a
// million targets in hash bins must fit in a few hundred MiB, and the
// custom metadata of a target (usually one of a handful of distinct
// values) is decoded once per distinct value, not on every decision.
// A segment is immutable once built and shared between the indexes of
// successive refreshes while its role is unchanged.
type segment struct {
	role    string
	version int64
	expires time.Time
	// names holds every name, in ents order (sorted), back to back.
	names string
	ents  []entry
	// table is an open-addressing hash table of entry indexes + 1 (0:
	// empty) for a large segment; a small one is binary-searched.
	table   []uint32
	customs []custom
	deleg   *metadata.Delegations // nil: the role delegates nothing
	// delegHash is the sha256 of the canonical delegations object (zero:
	// none): a child verified against the same delegations need not be
	// verified again.
	delegHash [32]byte
}

// entry is one target of a segment.
type entry struct {
	sha256  [32]byte
	length  int64
	nameEnd uint32 // the name is names[previous entry's nameEnd:nameEnd]
	// custom is 1 + the index in customs, 0 for none; noSHA256 marks a
	// target without a usable sha256 hash (never vouched for).
	custom uint32
}

const noSHA256 = 1 << 31

// custom is one distinct custom value, with the fields decisions read
// decoded once.
type custom struct {
	raw       json.RawMessage
	mediaType string
	inToto    []string
	hasLayout bool
}

func newCustom(raw json.RawMessage) custom {
	c := custom{raw: raw, mediaType: mediaTypeOf(raw), inToto: inTotoOf(raw)}
	var probe struct {
		Layout json.RawMessage `json:"layout"`
	}
	c.hasLayout = json.Unmarshal(raw, &probe) == nil && len(probe.Layout) > 0
	return c
}

func (s *segment) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = s.ents[i-1].nameEnd
	}
	return s.names[start:s.ents[i].nameEnd]
}

// find returns the entry for name.
func (s *segment) find(name string) (int, bool) {
	if s.table != nil {
		mask := uint64(len(s.table) - 1)
		for h := fnv1a(name) & mask; ; h = (h + 1) & mask {
			i := s.table[h]
			if i == 0 {
				return 0, false
			}
			if s.name(int(i-1)) == name {
				return int(i - 1), true
			}
		}
	}
	i := sort.Search(len(s.ents), func(i int) bool { return s.name(i) >= name })
	return i, i < len(s.ents) && s.name(i) == name
}

func (s *segment) target(i int) Target {
	e := &s.ents[i]
	d := digestOf(&e.sha256)
	t := Target{Name: s.name(i), Length: e.length, SHA256: d[len("sha256:"):], Role: s.role, digest: digest.Digest(d)}
	if c := e.custom &^ noSHA256; c > 0 {
		t.Custom, t.decoded = s.customs[c-1].raw, &s.customs[c-1]
	} else {
		t.decoded = &noCustom
	}
	return t
}

func (s *segment) vouches(i int) bool { return s.ents[i].custom&noSHA256 == 0 }

const hexDigits = "0123456789abcdef"

// digestOf is "sha256:<hex>" in one allocation.
func digestOf(b *[32]byte) string {
	var buf [7 + 64]byte
	copy(buf[:], "sha256:")
	for i, c := range b {
		buf[7+2*i], buf[7+2*i+1] = hexDigits[c>>4], hexDigits[c&15]
	}
	return string(buf[:])
}

func hexSHA256(b *[32]byte) string {
	var buf [64]byte
	for i, c := range b {
		buf[2*i], buf[2*i+1] = hexDigits[c>>4], hexDigits[c&15]
	}
	return string(buf[:])
}

// segmentBuilder collects the targets of one role.
type segmentBuilder struct {
	seg      *segment
	names    strings.Builder
	pending  []pendingEntry
	customOf map[string]uint32
	scratch  []byte
}

type pendingEntry struct {
	name []byte // may alias the parsed document until done
	e    entry
}

func newSegmentBuilder(role string, n int) *segmentBuilder {
	return &segmentBuilder{seg: &segment{role: role}, pending: make([]pendingEntry, 0, n), customOf: map[string]uint32{}}
}

// add records a target; sum is nil when it has no usable sha256.
func (b *segmentBuilder) add(name []byte, length int64, sum []byte, customJSON []byte) {
	e := entry{length: length}
	if len(sum) == sha256.Size {
		copy(e.sha256[:], sum)
	} else {
		e.custom = noSHA256
	}
	if customJSON != nil {
		c, ok := b.customOf[string(customJSON)]
		if !ok {
			raw := json.RawMessage(string(customJSON))
			b.seg.customs = append(b.seg.customs, newCustom(raw))
			c = uint32(len(b.seg.customs))
			b.customOf[string(raw)] = c
		}
		e.custom |= c
	}
	b.pending = append(b.pending, pendingEntry{name, e})
}

func (b *segmentBuilder) done() *segment {
	p := b.pending
	cmp := func(a, b pendingEntry) int { return bytes.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(p, cmp) {
		slices.SortFunc(p, cmp)
	}
	size := 0
	for i := range p {
		size += len(p[i].name)
	}
	b.names.Grow(size)
	s := b.seg
	s.ents = make([]entry, 0, len(p))
	for i := range p {
		// Names are unique: a role's targets are the keys of one object.
		b.names.Write(p[i].name)
		p[i].e.nameEnd = uint32(b.names.Len())
		s.ents = append(s.ents, p[i].e)
	}
	s.names = b.names.String()
	b.pending, b.customOf = nil, nil
	s.buildTable()
	return s
}

// buildTable makes the hash table of a large segment.
func (s *segment) buildTable() {
	if len(s.ents) > hashedSegment {
		size := 1
		for size < 2*len(s.ents) {
			size *= 2
		}
		s.table = make([]uint32, size)
		mask := uint64(size - 1)
		for i := range s.ents {
			h := fnv1a(s.name(i)) & mask
			for s.table[h] != 0 {
				h = (h + 1) & mask
			}
			s.table[h] = uint32(i + 1)
		}
	}
}

// hashedSegment is the size above which a segment gets a hash table: a
// hash bin of a few dozen names is searched as fast as it is hashed.
const hashedSegment = 256

// fnv1a hashes names that signed metadata lists: no attacker chooses them
// to collide.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

var noCustom custom

func mediaTypeOf(custom json.RawMessage) string {
	var c struct {
		MediaType string `json:"mediaType"`
	}
	if len(custom) == 0 || json.Unmarshal(custom, &c) != nil {
		return ""
	}
	return c.MediaType
}
