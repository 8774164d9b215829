package cnab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// checkStrictJSON accepts exactly one JSON object with no duplicate keys at
// any depth. Go's decoder keeps the last of duplicate keys and matches struct
// fields case-insensitively, other parsers differ; rejecting keys that are
// equal under case folding means every consumer reads the same document the
// proxy checked. RFC 8785 (the canonical form cnab-go writes) forbids
// duplicates anyway.
func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return errors.New("not a JSON object")
			}
			first = false
		} else if len(stack) == 0 {
			return errors.New("data after the top-level JSON object")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				markValueDone(stack)
				continue
			}
			k, ok := tok.(string)
			if !ok {
				return errors.New("object key is not a string")
			}
			f := foldKey(k)
			if _, dup := top.keys[f]; dup {
				return fmt.Errorf("duplicate key %q", k)
			}
			top.keys[f] = struct{}{}
			top.expectKey = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, &frame{object: true, keys: map[string]struct{}{}, expectKey: true})
		case '[':
			stack = append(stack, &frame{})
		case ']', '}':
			stack = stack[:len(stack)-1]
			markValueDone(stack)
		default:
			markValueDone(stack)
		}
	}
	if first {
		return errors.New("empty document")
	}
	if len(stack) > 0 {
		return errors.New("unexpected end of JSON input")
	}
	return nil
}

// frame is one open object or array.
type frame struct {
	object bool
	keys   map[string]struct{}
	// expectKey is true inside an object where the next string token is a key.
	expectKey bool
}

// markValueDone records that the innermost object received a value, so the
// next token there is a key again.
func markValueDone(stack []*frame) {
	if len(stack) > 0 && stack[len(stack)-1].object {
		stack[len(stack)-1].expectKey = true
	}
}

// foldKey maps every rune to the smallest member of its simple case-folding
// orbit, so two keys fold equal exactly when strings.EqualFold holds
// (the relation encoding/json uses to match object keys to struct fields).
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
