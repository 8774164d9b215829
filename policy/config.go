package policy

import (
	"fmt"
	"strings"

	"github.com/trustproxy/trustproxy/policy/intoto"
)

// Mode says what a rule does with the trust data.
type Mode string

const (
	// ModeEnforce serves only what the trust repository vouches for.
	ModeEnforce Mode = "enforce"
	// ModeAudit serves everything but reports (log, Warning header) what
	// enforce would have refused.
	ModeAudit Mode = "audit"
	// ModeAllow is an explicit exception: served without verification.
	ModeAllow Mode = "allow"
)

// Requirement names a kind of evidence a rule demands.
const (
	RequireTUF    = "tuf"
	RequireInToto = "in-toto"
)

// Config is the policy section of the configuration.
type Config struct {
	// Default is what happens to a repository no rule matches: only "deny".
	Default string
	Rules   []Rule
}

// Rule applies to the repositories its Match pattern selects.
type Rule struct {
	Name string
	// Match is a pattern over "<upstream>/<repository>": path segments are
	// matched with '*' (within a segment) and a final "**" (any depth).
	Match string
	Mode  Mode
	// Trust names the trust repository (enforce and audit).
	Trust string
	// TrustName maps the repository to its TUF trust name; "" means
	// "<upstream>/<repository>". "{repo}" and "{upstream}" are substituted,
	// e.g. "registry.corp.example/{repo}" for a mirror of a relocated repo.
	TrustName string
	// Require lists the evidence demanded; default [tuf]. "in-toto" makes
	// in-toto metadata mandatory.
	Require []string
	// InToto configures in-toto verification for this rule.
	InToto InTotoConfig
	// Attachments restricts the attachments served (default: all).
	Attachments Attachments
}

// InTotoConfig pins layout keys and names the subject.
type InTotoConfig struct {
	// LayoutKeys are public key files (PEM or securesystemslib JSON). When
	// set, only these keys may sign layouts; otherwise the keys the layout
	// target lists in the trust repository are used.
	LayoutKeys [][]byte
	// Subject is the artifact name in links: default "manifest.json" for
	// images and "bundle.json" for CNAB bundles.
	Subject string
	// Parameters are substituted into the layout.
	Parameters map[string]string
	// Limits bound the in-toto metadata of one artifact; zero fields are
	// intoto.DefaultLimits.
	Limits intoto.Limits
}

func (c *Config) validate(trusts map[string]bool) error {
	if c.Default != "" && c.Default != "deny" {
		return fmt.Errorf("policy.default: %q is not allowed: trustproxy denies what no rule matches (use a rule with match \"**\" and mode allow for an explicit exception)", c.Default)
	}
	seen := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		where := fmt.Sprintf("policy.rules[%d]", i)
		if r.Name == "" {
			r.Name = r.Match
		}
		if seen[r.Name] {
			return fmt.Errorf("%s.name: duplicate rule name %q", where, r.Name)
		}
		seen[r.Name] = true
		if err := validPattern(r.Match); err != nil {
			return fmt.Errorf("%s.match: %w", where, err)
		}
		switch r.Mode {
		case ModeAllow:
			if r.Trust != "" || len(r.Require) > 0 {
				return fmt.Errorf("%s (%s): mode allow takes no trust or require", where, r.Name)
			}
		case ModeEnforce, ModeAudit:
			if r.Trust == "" {
				return fmt.Errorf("%s.trust (%s): mode %s needs a trust repository", where, r.Name, r.Mode)
			}
			if !trusts[r.Trust] {
				return fmt.Errorf("%s.trust (%s): no trust repository named %q is configured", where, r.Name, r.Trust)
			}
		default:
			return fmt.Errorf("%s.mode (%s): %q is not one of enforce, audit, allow", where, r.Name, r.Mode)
		}
		for _, q := range r.Require {
			if q != RequireTUF && q != RequireInToto {
				return fmt.Errorf("%s.require (%s): %q is not one of tuf, in-toto", where, r.Name, q)
			}
		}
		if err := r.Attachments.validate(); err != nil {
			return fmt.Errorf("%s.attachments (%s): %w", where, r.Name, err)
		}
		if err := r.InToto.Limits.Validate(); err != nil {
			return fmt.Errorf("%s.inToto.limits (%s): %w", where, r.Name, err)
		}
		// A colon is a tag unless a "/" follows it (registry host:port).
		if i := strings.LastIndex(r.TrustName, ":"); i >= 0 && !strings.Contains(r.TrustName[i:], "/") {
			return fmt.Errorf("%s.trustName (%s): %q must not contain a tag", where, r.Name, r.TrustName)
		}
	}
	return nil
}

func (r *Rule) requires(what string) bool {
	for _, q := range r.Require {
		if q == what {
			return true
		}
	}
	return false
}

// trustName is the TUF trust name of repository repo on upstream.
func (r *Rule) trustName(upstream, repo string) string {
	if r.TrustName == "" {
		return upstream + "/" + repo
	}
	return strings.NewReplacer("{repo}", repo, "{upstream}", upstream).Replace(r.TrustName)
}
