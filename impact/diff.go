package impact

import (
	"context"
	"fmt"
	"strings"
)

// Verdicts an Outcome can have. "error" is a pull that failed for another
// reason than policy (upstream unreachable, unknown tag): it is not served
// either.
const (
	Allow          = "allow"
	AuditFail      = "audit-fail"
	AllowException = "allow-exception"
	Deny           = "deny"
	Error          = "error"
)

// Outcome is what a pull of a reference gets under one policy.
type Outcome struct {
	Verdict string `json:"verdict"`
	// Rule is the rule that governs the repository ("" when none does),
	// Mode its mode.
	Rule string `json:"rule"`
	Mode string `json:"mode,omitempty"`
	// Reason is the denial, the audit warning or the failure, "" when
	// served cleanly.
	Reason string `json:"reason,omitempty"`
	// Digest is what would be served.
	Digest string `json:"digest,omitempty"`
}

// served reports whether a client gets the content.
func (o Outcome) served() bool { return o.Verdict != Deny && o.Verdict != Error }

// Judge says what a pull of ref gets under one policy.
type Judge func(ctx context.Context, ref string) (Outcome, error)

// Change is one reference's outcome under both policies.
type Change struct {
	Seen
	Current  Outcome `json:"current"`
	Proposed Outcome `json:"proposed"`
	// Kind is "unchanged", "newly-denied" (served now, not under the
	// proposal), "newly-allowed", or "changed" (served under both, or
	// refused under both, but by another rule, mode, digest or reason).
	Kind string `json:"change"`
	// Why says in words what changed.
	Why string `json:"why,omitempty"`
}

// Summary counts changes by kind.
type Summary struct {
	References   int `json:"references"`
	Unchanged    int `json:"unchanged"`
	NewlyDenied  int `json:"newlyDenied"`
	NewlyAllowed int `json:"newlyAllowed"`
	Changed      int `json:"changed"`
}

// Report is a whole comparison.
type Report struct {
	Changes []Change `json:"references"`
	Summary Summary  `json:"summary"`
}

// Compare replays refs under both policies.
func Compare(ctx context.Context, refs []Seen, current, proposed Judge) (Report, error) {
	var rep Report
	for _, s := range refs {
		cur, err := current(ctx, s.Reference)
		if err != nil {
			return rep, fmt.Errorf("%s under the current policy: %w", s.Reference, err)
		}
		prop, err := proposed(ctx, s.Reference)
		if err != nil {
			return rep, fmt.Errorf("%s under the proposed policy: %w", s.Reference, err)
		}
		c := classify(Change{Seen: s, Current: cur, Proposed: prop})
		rep.Changes = append(rep.Changes, c)
		rep.Summary.References++
		switch c.Kind {
		case "unchanged":
			rep.Summary.Unchanged++
		case "newly-denied":
			rep.Summary.NewlyDenied++
		case "newly-allowed":
			rep.Summary.NewlyAllowed++
		default:
			rep.Summary.Changed++
		}
	}
	return rep, nil
}

func classify(c Change) Change {
	a, b := c.Current, c.Proposed
	switch {
	case a.served() && !b.served():
		c.Kind = "newly-denied"
	case !a.served() && b.served():
		c.Kind = "newly-allowed"
	case a == b:
		c.Kind = "unchanged"
		return c
	default:
		c.Kind = "changed"
	}
	var why []string
	if a.Rule != b.Rule || a.Mode != b.Mode {
		why = append(why, fmt.Sprintf("rule %s → %s", ruleText(a), ruleText(b)))
	}
	if a.Digest != b.Digest && a.Digest != "" && b.Digest != "" {
		why = append(why, fmt.Sprintf("digest %s → %s", a.Digest, b.Digest))
	}
	if b.Reason != "" && b.Reason != a.Reason {
		why = append(why, "now: "+b.Reason)
	} else if a.Reason != "" && b.Reason == "" {
		why = append(why, "was: "+a.Reason)
	}
	c.Why = strings.Join(why, "; ")
	return c
}

func ruleText(o Outcome) string {
	if o.Rule == "" {
		return "(none: default deny)"
	}
	return fmt.Sprintf("%q (%s)", o.Rule, o.Mode)
}
