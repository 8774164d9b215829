package access

import (
	"fmt"
	"strings"

	"github.com/trustproxy/trustproxy/internal/pattern"
)

// Rule says who may pull the repositories its patterns match.
type Rule struct {
	// Match holds repository patterns "<upstream>/<repository>" in the
	// one pattern syntax trustproxy uses (internal/pattern).
	Match []string
	// Allow lists principals: a user or certificate name, "group:<name>",
	// "authenticated" (anyone with valid credentials) or "anonymous"
	// (anyone at all).
	Allow []string
}

const (
	allowAnonymous     = "anonymous"
	allowAuthenticated = "authenticated"
	groupPrefix        = "group:"
)

func (r Rule) validate(groups map[string][]string) error {
	if len(r.Match) == 0 {
		return fmt.Errorf("match: at least one pattern is required")
	}
	for _, p := range r.Match {
		if err := pattern.Valid(p); err != nil {
			return fmt.Errorf("match: %w", err)
		}
	}
	if len(r.Allow) == 0 {
		return fmt.Errorf("allow: at least one principal is required (a name, group:<name>, authenticated or anonymous)")
	}
	for _, a := range r.Allow {
		if g, ok := strings.CutPrefix(a, groupPrefix); ok {
			if _, known := groups[g]; !known {
				return fmt.Errorf("allow: %q names no configured group", a)
			}
		} else if a == "" {
			return fmt.Errorf("allow: empty principal")
		}
	}
	return nil
}

// admits reports whether p is listed by the rule.
func (r Rule) admits(p Principal) bool {
	for _, a := range r.Allow {
		switch {
		case a == allowAnonymous:
			return true
		case p.Anonymous():
		case a == allowAuthenticated || a == p.Name:
			return true
		case strings.HasPrefix(a, groupPrefix):
			for _, g := range p.Groups {
				if a[len(groupPrefix):] == g {
					return true
				}
			}
		}
	}
	return false
}

// match returns the index of the rule that governs repo: the one with the
// most specific matching pattern (as policy rules are chosen), the first on
// ties; -1 when none matches.
func match(rules []Rule, repo string) (int, string) {
	best, bestPat, bestSpec := -1, "", -1
	for i, r := range rules {
		for _, p := range r.Match {
			if s := pattern.Specificity(p); pattern.Match(p, repo) && s > bestSpec {
				best, bestPat, bestSpec = i, p, s
			}
		}
	}
	return best, bestPat
}
