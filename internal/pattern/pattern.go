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
func Match(p, name string) bool {
	ps, ns := strings.Split(p, "/"), strings.Split(name, "/")
	for i, s := range ps {
		if s == "**" {
			return len(ns) > i // "**" stands for one or more segments
		}
		if i >= len(ns) {
			return false
		}
		if ok, _ := path.Match(s, ns[i]); !ok {
			return false
		}
	}
	return len(ps) == len(ns)
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
