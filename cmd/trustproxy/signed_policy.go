package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/trustproxy/trustproxy/proxy"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// policyFromConfig is policy.from: the rules are the TUF target Target of
// trust repository Trust, verified like any target, so every site enforces
// exactly the file the security team signed.
type policyFromConfig struct {
	Trust  string `json:"trust"`
	Target string `json:"target"`
}

// signedPolicy is the target a configuration's rules were taken from.
type signedPolicy struct {
	target  trustfetch.Target
	version string // audit lines' policy_version
}

// validatePolicyFrom checks policy.from against the rest of the file: the
// rules come from the target, so local ones would be silently ignored.
func (c *fileConfig) validatePolicyFrom() error {
	f := c.Policy.From
	if f == nil {
		return nil
	}
	if f.Trust == "" || f.Target == "" {
		return fmt.Errorf("policy.from: both trust and target are required")
	}
	t, ok := c.Trust[f.Trust]
	if !ok {
		return fmt.Errorf("policy.from.trust: %q is not a configured trust repository", f.Trust)
	}
	if t.Notary != nil {
		return fmt.Errorf("policy.from.trust: %q is a Notary source; a signed policy comes from a TUF repository", f.Trust)
	}
	if c.Policy.Default != "" || len(c.Policy.Rules) > 0 {
		return fmt.Errorf("policy: set rules and default in the signed target %q, or locally, not both", f.Target)
	}
	return nil
}

// loadSignedPolicy fetches and verifies c's policy target from its trust
// repository and makes its rules c's, validated as local rules are. A
// target that is missing, expired or fails verification is an error: the
// caller (start or reload) then changes nothing.
func loadSignedPolicy(ctx context.Context, c *fileConfig, trusts map[string]*trustfetch.Repository) error {
	f := c.Policy.From
	if f == nil {
		return nil
	}
	r := trusts[f.Trust]
	if r == nil {
		return fmt.Errorf("policy.from.trust: %q is not a TUF repository", f.Trust)
	}
	where := fmt.Sprintf("signed policy %q of trust repository %q", f.Target, f.Trust)
	ix, err := r.Index()
	if err != nil {
		// serve opens trust in the background; with nothing persisted yet
		// there are no rules to serve under until the server answers.
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		if r.Refresh(rctx) == nil {
			ix, err = r.Index()
		}
		cancel()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	t, ok := ix.Lookup(f.Target)
	if !ok {
		return fmt.Errorf("%s: no such target in targets version %d", where, ix.Versions().Targets)
	}
	b, err := r.FetchTarget(ctx, t)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	var pc policyConfig
	if err := checkKeys(b, &pc); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := yaml.UnmarshalStrict(b, &pc); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if pc.From != nil {
		return fmt.Errorf("%s: from: a signed policy cannot point at another", where)
	}
	for i, r := range pc.Rules {
		for _, k := range r.InToto.LayoutKeys {
			if !filepath.IsAbs(k) {
				return fmt.Errorf("%s: rules[%d].inToto.layoutKeys: %q must be an absolute path (the file is read on every site)", where, i, k)
			}
		}
	}
	pc.From = f
	c.Policy = pc
	if err := c.checkRuleUpstreams(); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	c.signed = &signedPolicy{target: t,
		version: fmt.Sprintf("%s@targets-v%d:sha256:%s", t.Name, ix.Versions().Targets, t.SHA256[:12])}
	return nil
}

// signedPolicyPoll is how often the watcher looks at the trust
// repository's verified index (in memory, no network): the repository's
// own refresh loop decides when a new targets version arrives.
const signedPolicyPoll = time.Second

// watchSignedPolicy reloads the configuration when the trust repository's
// refresh loop has brought a policy target with other content than the one
// in force. TUF's rollback protection means that is never an older one. A
// version whose reload is refused (it fails verification or validation) is
// not tried again until the target changes again or on SIGHUP; the last
// verified policy stays in force meanwhile. An expired repository is left
// alone: the policy in force stays, and /readyz reports the repository.
func (in *instance) watchSignedPolicy(ctx context.Context, live *proxy.Live) {
	go func() {
		t := time.NewTicker(signedPolicyPoll)
		defer t.Stop()
		tried := ""
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			published, inForce, err := in.publishedPolicy()
			if err != nil || published == inForce || published == tried {
				continue
			}
			tried = published
			in.log.Info("trust repository publishes a new signed policy; reloading", zap.String("sha256", published))
			_ = in.reloadConfig(ctx, live) // logged, counted and on /readyz
		}
	}()
}

// publishedPolicy is the sha256 of the policy target the trust repository
// now vouches for ("" if it has none) and of the one in force.
func (in *instance) publishedPolicy() (published, inForce string, err error) {
	in.mu.RLock()
	c := in.config
	var r *trustfetch.Repository
	if c.Policy.From != nil && c.signed != nil {
		r = in.trusts[c.Policy.From.Trust]
	}
	in.mu.RUnlock()
	if r == nil {
		return "", "", fmt.Errorf("no signed policy in force")
	}
	ix, err := r.Index()
	if err != nil {
		return "", "", err // expired or not yet verified: the policy in force stays
	}
	if t, ok := ix.Lookup(c.Policy.From.Target); ok {
		published = t.SHA256
	}
	return published, c.signed.target.SHA256, nil
}
