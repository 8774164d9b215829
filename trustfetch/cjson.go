package trustfetch

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A targets role of 100,000 targets is 23 MiB of JSON. go-tuf decodes it
// into maps of structs, encodes those again, decodes that into interfaces
// and writes canonical JSON from them, to verify the signatures: seconds and
// hundreds of MiB. jdoc parses the bytes once into a flat array of nodes,
// writes the canonical form (OLPC canonical JSON, as go-securesystemslib's
// cjson produces it) straight from that, and lets the verifier read the
// fields from the very nodes it canonicalised. Whatever could make the
// signed form and the read form differ is refused: duplicate object keys
// (also when they differ only in escapes), invalid UTF-8, lone surrogates,
// numbers that are not int64 integers in their shortest form.

type jkind uint8

const (
	jObject jkind = iota + 1
	jArray
	jString
	jNumber
	jTrue
	jFalse
	jNull
)

// maxJSONDepth bounds nesting: metadata is at most a few levels deep.
const maxJSONDepth = 64

// jnode is one JSON value. Members of an object are its children in pairs,
// key then value; next links siblings.
type jnode struct {
	start, end  int32 // the value's bytes in the source, quotes included
	first, next int32 // -1: none
	kind        jkind
	escaped     bool // a string with a backslash escape
}

type jdoc struct {
	src   []byte
	nodes []jnode
	// members is scratch space for sorting object members.
	members []jmember
	// payload is scratch space for a canonical form.
	payload []byte
}

type jmember struct {
	key []byte
	val int32
}

type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return fmt.Sprintf("offset %d: %s", e.off, e.msg) }

// parseJSON parses one JSON value that fills src (surrounding whitespace
// allowed). Node 0 is the top-level value.
func parseJSON(src []byte) (*jdoc, error) {
	d := &jdoc{}
	return d, d.parse(src)
}

// parse parses src into d, reusing d's buffers.
func (d *jdoc) parse(src []byte) error {
	if len(src) >= 1<<31 {
		return errors.New("JSON document larger than 2 GiB")
	}
	d.src, d.nodes, d.members = src, d.nodes[:0], d.members[:0]
	if want := len(src) / 16; cap(d.nodes) < want {
		d.nodes = make([]jnode, 0, want)
	}
	p := jparser{d: d}
	p.ws()
	if _, err := p.value(0); err != nil {
		return err
	}
	p.ws()
	if p.i != len(src) {
		return &jsonError{p.i, "data after the JSON value"}
	}
	return nil
}

type jparser struct {
	d *jdoc
	i int
}

func (p *jparser) ws() {
	s := p.d.src
	for p.i < len(s) && (s[p.i] == ' ' || s[p.i] == '\n' || s[p.i] == '\r' || s[p.i] == '\t') {
		p.i++
	}
}

func (p *jparser) fail(msg string) error { return &jsonError{p.i, msg} }

func (p *jparser) add(k jkind, start int) int32 {
	p.d.nodes = append(p.d.nodes, jnode{kind: k, start: int32(start), first: -1, next: -1})
	return int32(len(p.d.nodes) - 1)
}

func (p *jparser) value(depth int) (int32, error) {
	s := p.d.src
	if p.i >= len(s) {
		return -1, p.fail("unexpected end of JSON")
	}
	switch c := s[p.i]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return -1, p.fail("JSON nested too deeply")
		}
		kind, closer := jObject, byte('}')
		if c == '[' {
			kind, closer = jArray, ']'
		}
		n := p.add(kind, p.i)
		p.i++
		p.ws()
		last := int32(-1)
		link := func(c int32) {
			if last < 0 {
				p.d.nodes[n].first = c
			} else {
				p.d.nodes[last].next = c
			}
			last = c
		}
		if p.i < len(s) && s[p.i] == closer {
			p.i++
			p.d.nodes[n].end = int32(p.i)
			return n, nil
		}
		for {
			if kind == jObject {
				if p.i >= len(s) || s[p.i] != '"' {
					return -1, p.fail("object key is not a string")
				}
				k, err := p.str()
				if err != nil {
					return -1, err
				}
				link(k)
				p.ws()
				if p.i >= len(s) || s[p.i] != ':' {
					return -1, p.fail("missing ':' after object key")
				}
				p.i++
				p.ws()
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return -1, err
			}
			link(v)
			p.ws()
			if p.i >= len(s) {
				return -1, p.fail("unexpected end of JSON")
			}
			if s[p.i] == ',' {
				p.i++
				p.ws()
				continue
			}
			if s[p.i] != closer {
				return -1, p.fail("missing ',' or closing bracket")
			}
			p.i++
			p.d.nodes[n].end = int32(p.i)
			return n, nil
		}
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.num()
	default:
		for _, lit := range []struct {
			text string
			kind jkind
		}{{"true", jTrue}, {"false", jFalse}, {"null", jNull}} {
			if bytes.HasPrefix(s[p.i:], []byte(lit.text)) {
				n := p.add(lit.kind, p.i)
				p.i += len(lit.text)
				p.d.nodes[n].end = int32(p.i)
				return n, nil
			}
		}
		return -1, p.fail("invalid JSON value")
	}
}

// num accepts integers only, in their one canonical spelling: canonical
// JSON has no fractions or exponents, and "-0" or "007" would be signed as
// something else than what a decoder reads.
func (p *jparser) num() (int32, error) {
	s, start := p.d.src, p.i
	if s[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(s) && s[p.i] >= '0' && s[p.i] <= '9' {
		p.i++
	}
	if p.i == digits {
		return -1, p.fail("invalid number")
	}
	if p.i < len(s) && (s[p.i] == '.' || s[p.i] == 'e' || s[p.i] == 'E') {
		return -1, p.fail("number is not an integer (canonical JSON has none)")
	}
	text := string(s[start:p.i])
	if (s[digits] == '0' && p.i-digits > 1) || text == "-0" {
		return -1, &jsonError{start, "number " + text + " is not in canonical form"}
	}
	if _, err := strconv.ParseInt(text, 10, 64); err != nil {
		return -1, &jsonError{start, "number " + text + " is out of the int64 range"}
	}
	n := p.add(jNumber, start)
	p.d.nodes[n].end = int32(p.i)
	return n, nil
}

// str validates a string: UTF-8, no control characters, valid escapes,
// surrogates only in pairs.
func (p *jparser) str() (int32, error) {
	s, start := p.d.src, p.i
	p.i++
	escaped := false
	plain := p.i
	for {
		if p.i >= len(s) {
			return -1, p.fail("unterminated string")
		}
		c := s[p.i]
		switch {
		case c == '"':
			if !utf8.Valid(s[plain:p.i]) {
				return -1, &jsonError{start, "string is not valid UTF-8"}
			}
			p.i++
			n := p.add(jString, start)
			p.d.nodes[n].end, p.d.nodes[n].escaped = int32(p.i), escaped
			return n, nil
		case c < 0x20:
			return -1, p.fail("control character in string")
		case c == '\\':
			if !utf8.Valid(s[plain:p.i]) {
				return -1, &jsonError{start, "string is not valid UTF-8"}
			}
			escaped = true
			p.i++
			if p.i >= len(s) {
				return -1, p.fail("unterminated string")
			}
			switch s[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				r, ok := hex4(s, p.i+1)
				if !ok {
					return -1, p.fail(`invalid \u escape`)
				}
				p.i += 5
				if utf16.IsSurrogate(r) {
					r2, ok := rune(0), false
					if p.i+1 < len(s) && s[p.i] == '\\' && s[p.i+1] == 'u' {
						r2, ok = hex4(s, p.i+2)
					}
					if !ok || r >= 0xdc00 || utf16.DecodeRune(r, r2) == utf8.RuneError {
						return -1, p.fail("lone surrogate in string")
					}
					p.i += 6
				}
			default:
				return -1, p.fail("invalid escape in string")
			}
			plain = p.i
		default:
			p.i++
		}
	}
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// strBytes is the decoded value of string node n. It aliases the source
// when the string has no escapes.
func (d *jdoc) strBytes(n int32) []byte {
	nd := &d.nodes[n]
	raw := d.src[nd.start+1 : nd.end-1]
	if !nd.escaped {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			out = append(out, raw[i])
			i++
			continue
		}
		switch c := raw[i+1]; c {
		case 'b':
			out, i = append(out, '\b'), i+2
		case 'f':
			out, i = append(out, '\f'), i+2
		case 'n':
			out, i = append(out, '\n'), i+2
		case 'r':
			out, i = append(out, '\r'), i+2
		case 't':
			out, i = append(out, '\t'), i+2
		case 'u':
			r, _ := hex4(raw, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw, i+2)
				r, i = utf16.DecodeRune(r, r2), i+6
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out, i = append(out, c), i+2
		}
	}
	return out
}

func (d *jdoc) str(n int32) string { return string(d.strBytes(n)) }

// int reads number node n (validated as an int64 by the parser).
func (d *jdoc) int(n int32) int64 {
	v, _ := strconv.ParseInt(string(d.src[d.nodes[n].start:d.nodes[n].end]), 10, 64)
	return v
}

// raw is node n's source bytes.
func (d *jdoc) raw(n int32) []byte { return d.src[d.nodes[n].start:d.nodes[n].end] }

// field returns the value of key in object n, or -1.
func (d *jdoc) field(n int32, key string) int32 {
	for k := d.nodes[n].first; k >= 0; k = d.nodes[d.nodes[k].next].next {
		if string(d.strBytes(k)) == key {
			return d.nodes[k].next
		}
	}
	return -1
}

// canonical appends the canonical form of node n to out. It refuses
// duplicate keys in any object.
func (d *jdoc) canonical(n int32, out []byte) ([]byte, error) {
	nd := d.nodes[n]
	switch nd.kind {
	case jString:
		if !nd.escaped {
			return append(out, d.src[nd.start:nd.end]...), nil
		}
		return appendCanonicalString(out, d.strBytes(n)), nil
	case jArray:
		out = append(out, '[')
		for c := nd.first; c >= 0; c = d.nodes[c].next {
			if c != nd.first {
				out = append(out, ',')
			}
			var err error
			if out, err = d.canonical(c, out); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	case jObject:
		base := len(d.members)
		for k := nd.first; k >= 0; k = d.nodes[d.nodes[k].next].next {
			d.members = append(d.members, jmember{key: d.strBytes(k), val: d.nodes[k].next})
		}
		ms := d.members[base:]
		cmp := func(a, b jmember) int { return bytes.Compare(a.key, b.key) }
		if !slices.IsSortedFunc(ms, cmp) {
			slices.SortFunc(ms, cmp)
		}
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(ms[i-1].key, ms[i].key) {
				return nil, &jsonError{int(nd.start), fmt.Sprintf("duplicate key %q", ms[i].key)}
			}
		}
		out = append(out, '{')
		for i := range len(ms) {
			// d.members may grow (and move) while members are written.
			m := d.members[base+i]
			if i > 0 {
				out = append(out, ',')
			}
			out = appendCanonicalString(out, m.key)
			out = append(out, ':')
			var err error
			if out, err = d.canonical(m.val, out); err != nil {
				return nil, err
			}
		}
		d.members = d.members[:base]
		return append(out, '}'), nil
	default:
		return append(out, d.src[nd.start:nd.end]...), nil
	}
}

// appendCanonicalString escapes only '\\' and '"', as canonical JSON does.
func appendCanonicalString(out, s []byte) []byte {
	out = append(out, '"')
	for _, c := range s {
		if c == '\\' || c == '"' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return append(out, '"')
}
