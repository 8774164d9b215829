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

// Limits on what one artifact's in-toto metadata may pull in.
const (
	maxInTotoTargets = 256
	inTotoCacheSize  = 4096
)

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
	r := e.Rule(s.Upstream, s.Repository)
	names := t.InToto()
	if len(names) == 0 {
		if r.requires(RequireInToto) {
			return e.fail(d, fmt.Sprintf("rule requires in-toto but target %q lists no in-toto metadata", t.Name))
		}
		return d
	}
	subjectName := r.InToto.Subject
	if subjectName == "" {
		subjectName = defaultSubject
	}
	ev, err := e.intoto.check(ctx, e.trusts[r.Trust], ix, r, names, subjectName, subject)
	if err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	d.InToto = ev
	return d
}

func (c *inTotoChecker) check(ctx context.Context, ts TrustSource, ix *trustfetch.Index, r *Rule, names []string, subjectName string, subject digest.Digest) (*InTotoEvidence, error) {
	if len(names) > maxInTotoTargets {
		return nil, fmt.Errorf("target lists %d in-toto files, more than the limit of %d", len(names), maxInTotoTargets)
	}
	in := intoto.Input{SubjectName: subjectName, SubjectSHA256: subject.Encoded(), Parameters: r.InToto.Parameters, Now: c.now()}
	var layout *trustfetch.Target
	for _, n := range names {
		t, ok := ix.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("in-toto metadata %q is not a target of the trust repository", n)
		}
		if t.Length > intoto.MaxMetadataBytes {
			return nil, fmt.Errorf("in-toto metadata %q is %d bytes, more than the %d allowed", n, t.Length, intoto.MaxMetadataBytes)
		}
		b, err := ts.FetchTarget(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", n, err)
		}
		switch {
		case strings.HasSuffix(n, ".layout"):
			if layout != nil {
				return nil, fmt.Errorf("more than one layout listed (%q and %q)", layout.Name, n)
			}
			layout, in.Layout = &t, b
		case strings.HasSuffix(n, ".link"):
			in.Links = append(in.Links, b)
		default:
			return nil, fmt.Errorf("in-toto metadata %q is neither a .layout nor a .link", n)
		}
	}
	if layout == nil {
		return nil, fmt.Errorf("no root layout among the listed in-toto metadata")
	}
	if len(r.InToto.LayoutKeys) > 0 {
		in.LayoutKeys = r.InToto.LayoutKeys
		for i := range in.LayoutKeys {
			in.LayoutKeyOrigins = append(in.LayoutKeyOrigins, fmt.Sprintf("pinned in rule %q, inToto.layoutKeys[%d]", r.Name, i))
		}
	} else {
		keys := layout.InToto()
		if len(keys) == 0 {
			return nil, fmt.Errorf("layout target %q lists no public keys and the rule pins none", layout.Name)
		}
		for _, kn := range keys {
			kt, ok := ix.Lookup(kn)
			if !ok {
				return nil, fmt.Errorf("layout key %q is not a target of the trust repository", kn)
			}
			b, err := ts.FetchTarget(ctx, kt)
			if err != nil {
				return nil, fmt.Errorf("fetch %q: %w", kn, err)
			}
			in.LayoutKeys = append(in.LayoutKeys, b)
			in.LayoutKeyOrigins = append(in.LayoutKeyOrigins, fmt.Sprintf("from the trust repository, target %q", kn))
		}
	}
	res, cached, err := c.verifier.Verify(ctx, in)
	if err != nil {
		return nil, err
	}
	return &InTotoEvidence{LayoutSHA256: res.LayoutSHA256, Steps: res.Steps, Functionaries: res.Functionaries, Cached: cached}, nil
}
