package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy/intoto"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// inTotoCacheSize bounds the remembered in-toto verifications.
const inTotoCacheSize = 4096

// inTotoChecker gathers in-toto metadata through the trust repository (every
// file is a TUF target, downloaded and hash-checked) and verifies it without
// running anything. Results are cached by the verifier per content hash.
type inTotoChecker struct {
	verifier *intoto.Verifier
	now      func() time.Time
}

func newInTotoChecker(now func() time.Time) *inTotoChecker {
	return &inTotoChecker{verifier: intoto.NewVerifier(inTotoCacheSize), now: now}
}

// evidence adds in-toto verification to an approved TUF decision when the
// target names in-toto metadata or the rule requires it.
func (e *Engine) evidence(ctx context.Context, d Decision, s Subject, t trustfetch.Target, ix *trustfetch.Index, defaultSubject string, subject digest.Digest) Decision {
	if !d.Allowed || d.Reason != "" {
		return d
	}
	// The rule begin found for s (names are unique), without matching
	// the patterns again.
	r := e.byName[d.Rule]
	if r == nil {
		r = e.Rule(s.Upstream, s.Repository)
	}
	subjectName := r.InToto.Subject
	if subjectName == "" {
		subjectName = defaultSubject
	}
	names := t.InToto()
	if len(names) == 0 {
		if !t.HasLayout() {
			if r.requires(RequireInToto) {
				return e.fail(d, fmt.Sprintf("rule requires in-toto but target %q lists no in-toto metadata", t.Name))
			}
			return d
		}
		if p, err := intoto.ParseSignyPayload(t.Custom); err != nil {
			return e.fail(d, fmt.Sprintf("in-toto: target %q: %v", t.Name, err))
		} else if p != nil {
			return e.signyEvidence(ctx, d, r, t, p, subjectName, subject)
		}
		if r.requires(RequireInToto) {
			return e.fail(d, fmt.Sprintf("rule requires in-toto but target %q lists no in-toto metadata", t.Name))
		}
		return d
	}
	ev, err := e.intoto.check(ctx, e.trusts[r.Trust], ix, r, names, subjectName, subject)
	if err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	d.InToto = ev
	return d
}

func (c *inTotoChecker) check(ctx context.Context, ts TrustSource, ix *trustfetch.Index, r *Rule, names []string, subjectName string, subject digest.Digest) (*InTotoEvidence, error) {
	limits := r.InToto.Limits.WithDefaults()
	in := intoto.Input{SubjectName: subjectName, SubjectSHA256: subject.Encoded(), Parameters: r.InToto.Parameters,
		Now: c.now(), Limits: limits}
	// Everything that can be refused from the TUF index alone is refused
	// before the first download: names, counts and lengths.
	var layout *trustfetch.Target
	var links []trustfetch.Target
	for _, n := range names {
		t, ok := ix.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("in-toto metadata %q is not a target of the trust repository", n)
		}
		switch {
		case strings.HasSuffix(n, ".layout"):
			if layout != nil {
				return nil, fmt.Errorf("more than one layout listed (%q and %q)", layout.Name, n)
			}
			layout = &t
		case strings.HasSuffix(n, ".link"):
			links = append(links, t)
		default:
			return nil, fmt.Errorf("in-toto metadata %q is neither a .layout nor a .link", n)
		}
		if err := limits.CheckMetadataSize(fmt.Sprintf("in-toto metadata %q", n), t.Length); err != nil {
			return nil, err
		}
	}
	if layout == nil {
		return nil, fmt.Errorf("no root layout among the listed in-toto metadata")
	}
	if err := limits.CheckLinkCount(len(links)); err != nil {
		return nil, err
	}
	var keyTargets []trustfetch.Target
	if len(r.InToto.LayoutKeys) == 0 {
		keys := layout.InToto()
		if len(keys) == 0 {
			return nil, fmt.Errorf("layout target %q lists no public keys and the rule pins none", layout.Name)
		}
		if err := limits.CheckLayoutKeyCount(len(keys)); err != nil {
			return nil, err
		}
		for _, kn := range keys {
			kt, ok := ix.Lookup(kn)
			if !ok {
				return nil, fmt.Errorf("layout key %q is not a target of the trust repository", kn)
			}
			keyTargets = append(keyTargets, kt)
		}
	}

	b, err := ts.FetchTarget(ctx, *layout)
	if err != nil {
		return nil, fmt.Errorf("fetch %q: %w", layout.Name, err)
	}
	in.Layout = b
	// The step count is known once the layout is here: a layout over the
	// rule's limits costs no link downloads.
	if err := intoto.CheckLayoutLimits(in.Layout, limits); err != nil {
		return nil, err
	}
	if len(r.InToto.LayoutKeys) > 0 {
		in.LayoutKeys = r.InToto.LayoutKeys
		for i := range in.LayoutKeys {
			in.LayoutKeyOrigins = append(in.LayoutKeyOrigins, fmt.Sprintf("pinned in rule %q, inToto.layoutKeys[%d]", r.Name, i))
		}
	}
	for _, kt := range keyTargets {
		b, err := ts.FetchTarget(ctx, kt)
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", kt.Name, err)
		}
		in.LayoutKeys = append(in.LayoutKeys, b)
		in.LayoutKeyOrigins = append(in.LayoutKeyOrigins, fmt.Sprintf("from the trust repository, target %q", kt.Name))
	}
	for _, lt := range links {
		b, err := ts.FetchTarget(ctx, lt)
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", lt.Name, err)
		}
		in.Links = append(in.Links, b)
	}
	res, cached, err := c.verifier.Verify(ctx, in)
	if err != nil {
		return nil, err
	}
	return &InTotoEvidence{LayoutSHA256: res.LayoutSHA256, Steps: res.Steps, Functionaries: res.Functionaries, Cached: cached}, nil
}
