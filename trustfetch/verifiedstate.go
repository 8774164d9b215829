package trustfetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A restart would otherwise parse and verify every targets role again from
// the state directory: 230 MiB of JSON for a million targets. What was
// verified is also kept in <StateDir>/verified/<escaped role>, one compact
// binary file per role, with the snapshot entry (version, length, hashes)
// the role was verified under and the delegation it was verified against.
// Such a file is used exactly like the roles a running process keeps
// between refreshes (walker.prev): only if the snapshot verified now names
// the very same entry for the role and its delegator is the same; its
// expiry is checked like any other. Anything else is read from the stored
// JSON or downloaded and verified again. A file is only as trusted as the
// rest of the state directory (which holds the root the next refresh
// starts from); a checksum catches a torn or corrupted one, which is then
// ignored.
const verifiedDir = "verified"

const verifiedMagic = "trustproxy verified role v1\n"

// encodeVerified is the file for one verified role.
func encodeVerified(vr verifiedRole) ([]byte, error) {
	s := vr.seg
	w := make([]byte, 0, len(verifiedMagic)+len(s.names)+48*len(s.ents)+256)
	w = append(w, verifiedMagic...)
	putU := func(v uint64) { w = binary.AppendUvarint(w, v) }
	putI := func(v int64) { w = binary.AppendVarint(w, v) }
	putS := func(s string) { putU(uint64(len(s))); w = append(w, s...) }
	putS(s.role)
	putI(vr.entry.version)
	putI(vr.entry.length)
	putS(vr.entry.hashes)
	putS(vr.parent)
	putS(vr.delegator)
	putI(s.version)
	putI(s.expires.UnixNano())
	if s.deleg != nil {
		b, err := json.Marshal(s.deleg)
		if err != nil {
			return nil, fmt.Errorf("encode delegations of %q: %w", s.role, err)
		}
		putS(string(b))
		w = append(w, s.delegHash[:]...)
	} else {
		putS("")
	}
	putU(uint64(len(s.customs)))
	for _, c := range s.customs {
		putS(string(c.raw))
	}
	putS(s.names)
	putU(uint64(len(s.ents)))
	for i := range s.ents {
		e := &s.ents[i]
		w = append(w, e.sha256[:]...)
		w = binary.LittleEndian.AppendUint64(w, uint64(e.length))
		w = binary.LittleEndian.AppendUint32(w, e.nameEnd)
		w = binary.LittleEndian.AppendUint32(w, e.custom)
	}
	sum := sha256.Sum256(w)
	return append(w, sum[:]...), nil
}

// decodeVerified reads what encodeVerified wrote.
func decodeVerified(b []byte) (verifiedRole, error) {
	var vr verifiedRole
	if len(b) < len(verifiedMagic)+sha256.Size || string(b[:len(verifiedMagic)]) != verifiedMagic {
		return vr, errors.New("not a verified-role file")
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(body):]) {
		return vr, errors.New("checksum mismatch")
	}
	r := &reader{b: body[len(verifiedMagic):]}
	s := &segment{role: r.s()}
	vr = verifiedRole{entry: snapshotEntry{version: r.i(), length: r.i(), hashes: r.s()}, parent: r.s(), delegator: r.s(), seg: s}
	s.version, s.expires = r.i(), time.Unix(0, r.i()).UTC()
	if d := r.s(); d != "" {
		var deleg metadata.Delegations
		if err := json.Unmarshal([]byte(d), &deleg); err != nil {
			return vr, fmt.Errorf("delegations of %q: %w", s.role, err)
		}
		s.deleg = &deleg
		copy(s.delegHash[:], r.next(32))
	}
	nc := r.u()
	for j := uint64(0); j < nc && r.err == nil; j++ {
		s.customs = append(s.customs, newCustom(json.RawMessage(r.s())))
	}
	s.names = r.s()
	ne := r.u()
	if r.err != nil || ne != uint64(len(r.b))/48 || len(r.b)%48 != 0 {
		return vr, errors.New("truncated")
	}
	s.ents = make([]entry, ne)
	for j := range s.ents {
		e, raw := &s.ents[j], r.next(48)
		copy(e.sha256[:], raw[:32])
		e.length = int64(binary.LittleEndian.Uint64(raw[32:]))
		e.nameEnd = binary.LittleEndian.Uint32(raw[40:])
		e.custom = binary.LittleEndian.Uint32(raw[44:])
		if int(e.nameEnd) > len(s.names) || (j > 0 && e.nameEnd < s.ents[j-1].nameEnd) || int(e.custom&^noSHA256) > len(s.customs) {
			return vr, fmt.Errorf("role %q: entry %d out of range", s.role, j)
		}
	}
	if r.err != nil {
		return vr, r.err
	}
	s.buildTable()
	return vr, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n > len(r.b) || n < 0 {
		r.err = errors.New("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) i() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) s() string {
	n := r.u()
	if n > uint64(len(r.b)) {
		r.err = errors.New("truncated")
		return ""
	}
	return string(r.next(int(n)))
}
