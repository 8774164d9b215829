// Package pattern is the one syntax trustproxy uses for repository
// patterns (policy rules, Notary trust pins): "/"-separated segments matched
// with path.Match ('*' stays within a segment) and a final "**" standing
// for one or more segments.
package pattern

import (
	"fmt"
	"path"
	"strings"
)

// Valid checks a pattern.
func Valid(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if s == "**" {
			if i != len(segs)-1 {
				return fmt.Errorf("pattern %q: ** is only allowed as the last segment", p)
			}
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// Match reports whether name matches the (valid) pattern p.
func Match(p, name string) bool { return Mismatch(p, name) == "" }

// Mismatch says why name does not match the (valid) pattern p, "" if it
// does (policy explain prints it).
func Mismatch(p, name string) string {
	ps, ns := strings.Split(p, "/"), strings.Split(name, "/")
	for i, s := range ps {
		if s == "**" {
			if len(ns) > i { // "**" stands for one or more segments
				return ""
			}
			return fmt.Sprintf("pattern %q needs at least one path segment after %q", p, name)
		}
		if i >= len(ns) {
			break
		}
		if ok, _ := path.Match(s, ns[i]); !ok {
			return fmt.Sprintf("segment %d: %q does not match %q", i+1, ns[i], s)
		}
	}
	if len(ps) != len(ns) {
		return fmt.Sprintf("pattern %q has %d path segments, %q has %d", p, len(ps), name, len(ns))
	}
	return ""
}

// Specificity orders patterns: more literal characters before the first
// wildcard wins; an exact pattern beats any wildcard one.
func Specificity(p string) int {
	i := strings.IndexAny(p, "*?[")
	if i < 0 {
		return 1 << 20
	}
	return i
}
