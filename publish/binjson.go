// Encoding hash bins: go-tuf marshals a targets role through a map per
// target, re-compacts every nested MarshalJSON result, and canonicalises by
// marshalling, decoding into interface{} and encoding again; for a million
// targets that is most of the publisher's time. A bin (targets, no
// delegations, nothing unrecognised) is written here straight to its
// canonical JSON (the OLPC form securesystemslib's cjson produces and TUF
// signs), which for plain strings is also valid JSON: the file clients
// fetch holds the signed bytes verbatim, encoded once and never copied.

package publish

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// binEncoder encodes bins; safe for concurrent use. It remembers the
// canonical form of each custom metadata value it has seen: in a bulk
// publish most targets share one ({"mediaType": ...}).
type binEncoder struct {
	mu     sync.RWMutex
	custom map[string][]byte // raw JSON → canonical bytes, or nil if not plain
}

// canonical is the canonical JSON of s, or ok false when s is not a bin
// this encoder covers (delegations, unrecognised fields, strings with
// control characters or invalid UTF-8, where canonical JSON is not valid
// JSON); then use go-tuf's encoders.
func (e *binEncoder) canonical(s *metadata.TargetsType) (out []byte, ok bool, err error) {
	body, ok, err := e.targetsBody(s)
	if err != nil || !ok {
		return nil, ok, err
	}
	f := newBinFile(s, body)
	return f.signed(), true, nil
}

// binFileBuf builds a bin's metadata file in one buffer, the signed part
// first: {"signed":<canonical JSON>,"signatures":[...]}. Any JSON parser
// reads it; what was signed is a slice of it, so a bin of a quarter of a
// megabyte is neither copied to be signed nor copied to be written.
type binFileBuf struct {
	b   []byte
	end int // end of the signed part
}

const binFileHead = `{"signed":`

// newBinFile starts the file of s given the canonical encoding of its
// targets (targetsBody), which does not depend on version or expiry: a bin
// staged and then signed by one Repo has its targets encoded once.
func newBinFile(s *metadata.TargetsType, body []byte) *binFileBuf {
	b := make([]byte, 0, len(binFileHead)+len(body)+128+len(`,"signatures":[]}`)+300)
	b = append(b, binFileHead...)
	b = append(b, `{"_type":`...)
	b = appendString(b, s.Type)
	b = append(b, `,"expires":`...)
	b = appendString(b, s.Expires.Format(time.RFC3339Nano))
	b = append(b, `,"spec_version":`...)
	b = appendString(b, s.SpecVersion)
	b = append(b, `,"targets":`...)
	b = append(b, body...)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, s.Version, 10)
	b = append(b, '}')
	return &binFileBuf{b: b, end: len(b)}
}

// signed is the canonical JSON of the bin's signed part.
func (f *binFileBuf) signed() []byte { return f.b[len(binFileHead):f.end] }

// finish appends the signatures and returns the file.
func (f *binFileBuf) finish(sigs []metadata.Signature) []byte {
	b := append(f.b[:f.end], `,"signatures":[`...)
	for i, s := range sigs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"keyid":`...)
		b = appendString(b, s.KeyID)
		b = append(b, `,"sig":"`...)
		b = hex.AppendEncode(b, s.Signature)
		b = append(b, `"}`...)
	}
	return append(b, ']', '}')
}

// targetsBody is the canonical JSON of s.Targets, ok false as for canonical.
func (e *binEncoder) targetsBody(s *metadata.TargetsType) (out []byte, ok bool, err error) {
	if s.Delegations != nil || len(s.UnrecognizedFields) != 0 || !plain(s.Type) || !plain(s.SpecVersion) {
		return nil, false, nil
	}
	names := make([]string, 0, len(s.Targets))
	size := 2
	for name, tf := range s.Targets {
		if len(tf.UnrecognizedFields) != 0 || !plain(name) {
			return nil, false, nil
		}
		names = append(names, name)
		size += len(name) + 200
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, name := range names {
		tf := s.Targets[name]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':', '{')
		if tf.Custom != nil {
			c, ok, err := e.canonicalCustom(*tf.Custom)
			if err != nil || !ok {
				return nil, ok, err
			}
			b = append(b, `"custom":`...)
			b = append(b, c...)
			b = append(b, ',')
		}
		b = append(b, `"hashes":`...)
		b = appendHashes(b, tf.Hashes)
		if b == nil {
			return nil, false, nil
		}
		b = append(b, `,"length":`...)
		b = strconv.AppendInt(b, tf.Length, 10)
		b = append(b, '}')
	}
	return append(b, '}'), true, nil
}

func (e *binEncoder) canonicalCustom(raw json.RawMessage) ([]byte, bool, error) {
	e.mu.RLock()
	c, ok := e.custom[string(raw)] // no allocation for the lookup
	e.mu.RUnlock()
	if ok {
		return c, c != nil, nil
	}
	c, err := cjson.EncodeCanonical(raw)
	if err != nil {
		return nil, false, err
	}
	if bytes.ContainsFunc(c, func(r rune) bool { return r < ' ' || r == utf8.RuneError }) {
		c = nil
	}
	e.mu.Lock()
	if e.custom == nil {
		e.custom = map[string][]byte{}
	}
	e.custom[string(raw)] = c
	e.mu.Unlock()
	return c, c != nil, nil
}

// appendHashes writes hashes with sorted keys; nil when a key is not plain.
func appendHashes(b []byte, h metadata.Hashes) []byte {
	if h == nil {
		return append(b, "null"...)
	}
	if sum, ok := h["sha256"]; ok && len(h) == 1 { // what this publisher writes
		b = append(b, `{"sha256":"`...)
		b = hex.AppendEncode(b, sum)
		return append(b, `"}`...)
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		if !plain(k) {
			return nil
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':', '"')
		b = hex.AppendEncode(b, h[k])
		b = append(b, '"')
	}
	return append(b, '}')
}

// plain strings are valid UTF-8 without control characters: their
// canonical encoding (only '\\' and '"' escaped) is also valid JSON.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// appendString is cjson's string encoding: backslash and double quote
// escaped, everything else as is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
