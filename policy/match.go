package policy

import (
	"fmt"
	"path"
	"strings"
)

// validPattern checks a rule's match pattern.
func validPattern(p string) error {
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

// matches reports whether repo ("<upstream>/<repository>") matches p.
func matches(p, repo string) bool {
	ps, rs := strings.Split(p, "/"), strings.Split(repo, "/")
	for i, s := range ps {
		if s == "**" {
			return len(rs) > i // "**" stands for one or more segments
		}
		if i >= len(rs) {
			return false
		}
		if ok, _ := path.Match(s, rs[i]); !ok {
			return false
		}
	}
	return len(ps) == len(rs)
}

// specificity orders patterns: more literal characters before the first
// wildcard wins; an exact pattern beats any wildcard one.
func specificity(p string) int {
	i := strings.IndexAny(p, "*?[")
	if i < 0 {
		return 1 << 20
	}
	return i
}
