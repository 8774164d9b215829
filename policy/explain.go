package policy

import "fmt"

// Considered is one rule as the engine weighed it for a repository, in the
// order it tries rules (most specific pattern first).
type Considered struct {
	Rule  string `json:"rule"`
	Match string `json:"match"`
	Mode  Mode   `json:"mode"`
	Trust string `json:"trust,omitempty"`
	// Matched is true for the one rule that governs the repository.
	Matched bool `json:"matched"`
	// Why says why the rule did not govern: its pattern does not match, or
	// a more specific rule matched first.
	Why string `json:"why,omitempty"`
}

// Explain lists every rule in evaluation order for upstream/repo and says
// which one governs it and why each other one does not.
func (e *Engine) Explain(upstream, repo string) []Considered {
	key := upstream + "/" + repo
	var out []Considered
	var winner *Rule
	for _, r := range e.rules {
		c := Considered{Rule: r.Name, Match: r.Match, Mode: r.Mode, Trust: r.Trust}
		switch why := mismatch(r.Match, key); {
		case why != "":
			c.Why = why
		case winner != nil:
			c.Why = fmt.Sprintf("matches too, but rule %q (%s) is more specific and was tried first", winner.Name, winner.Match)
		default:
			c.Matched, winner = true, r
		}
		out = append(out, c)
	}
	return out
}

// Version names the policy the engine enforces (Options.Version).
func (e *Engine) Version() string { return e.version }
