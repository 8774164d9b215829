package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	yaml "sigs.k8s.io/yaml/goyaml.v3"
)

// checkKeys walks the YAML document alongside the Go type it will be decoded
// into and reports the first key the type does not document, or value of the
// wrong kind, by its full key path and line: "upstreams[0].tiemout". The
// decoder behind sigs.k8s.io/yaml is encoding/json, which would name only
// the Go field, speak of JSON, and accept "Root" for "root".
func checkKeys(doc []byte, into any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return err
	}
	if len(root.Content) == 0 {
		return nil // an empty file: validation says what is missing
	}
	return walkKeys(root.Content[0], reflect.TypeOf(into).Elem(), "")
}

// keyError is an error about one key below the value being decoded; the
// walker prefixes the path to it. A type with its own UnmarshalJSON returns
// it so that its errors carry full paths too.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func walkKeys(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return nil
	}
	if err := noDuplicateKeys(n, path); err != nil {
		return err
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// The type reads itself; give it the value the way the decoder will.
		var v any
		if err := n.Decode(&v); err != nil {
			return keyAt(n, path, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return keyAt(n, path, err)
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			return keyAt(n, path, err)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return walkKeys(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return wrongKind(n, path, "a mapping of keys")
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return unknownKey(k, joinKey(path, k.Value), fields)
			}
			if err := walkKeys(v, ft, joinKey(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return wrongKind(n, path, "a mapping")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := walkKeys(n.Content[i+1], t.Elem(), joinKey(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return wrongKind(n, path, "a list")
		}
		for i, c := range n.Content {
			if err := walkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return wrongKind(n, path, "a string")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return wrongKind(n, path, "true or false")
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return wrongKind(n, path, "a whole number")
		}
	}
	return nil
}

// yamlFields maps the documented key names of a struct (its json tags) to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyAt(n *yaml.Node, path string, err error) error {
	var ke *keyError
	if errors.As(err, &ke) {
		return fmt.Errorf("line %d: %s: %w", n.Line, joinKey(path, ke.key), ke.err)
	}
	return fmt.Errorf("line %d: %s: %w", n.Line, path, err)
}

func wrongKind(n *yaml.Node, path, want string) error {
	got := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}[n.Kind]
	if got == "" {
		got = fmt.Sprintf("%q", n.Value)
	}
	return fmt.Errorf("line %d: %s: want %s, got %s", n.Line, path, want, got)
}

func unknownKey(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := ""
	if s := closest(k.Value, names); s != "" {
		hint = fmt.Sprintf(`; did you mean %q?`, s)
	}
	return fmt.Errorf("line %d: %s: unknown key%s (known here: %s)", k.Line, path, hint, strings.Join(names, ", "))
}

// closest is the name within edit distance 2 of s (ignoring case), if any.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(s), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func noDuplicateKeys(n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if first, ok := seen[k.Value]; ok {
			return fmt.Errorf("line %d: %s: set twice (first on line %d)", k.Line, joinKey(path, k.Value), first)
		}
		seen[k.Value] = k.Line
	}
	return nil
}
