package policy

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy/intoto"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// signyEvidence verifies Signy's inline in-toto payload with the same
// no-exec verifier as spec-301 metadata. The layout key ships in the
// payload it vouches for, so by itself it proves nothing: it must be one of
// the layout keys the rule pins.
func (e *Engine) signyEvidence(ctx context.Context, d Decision, r *Rule, t trustfetch.Target, p *intoto.SignyPayload, subjectName string, subject digest.Digest) Decision {
	if len(r.InToto.LayoutKeys) == 0 {
		return e.fail(d, fmt.Sprintf("in-toto: target %q carries Signy's inline layout key, which only a key pinned in the rule (inToto.layoutKeys) can make trustworthy; rule %q pins none", t.Name, r.Name))
	}
	pinned, err := p.PinnedKey(r.InToto.LayoutKeys)
	if err != nil {
		return e.fail(d, fmt.Sprintf("in-toto: target %q: %v", t.Name, err))
	}
	if pinned == nil {
		return e.fail(d, fmt.Sprintf("in-toto: the layout key in target %q's Signy payload is not pinned by rule %q", t.Name, r.Name))
	}
	limits := r.InToto.Limits.WithDefaults()
	if err := limits.CheckLinkCount(len(p.Links)); err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	in := p.Input(pinned, subjectName, subject.Encoded())
	in.Parameters, in.Now, in.Limits = r.InToto.Parameters, e.intoto.now(), limits
	res, cached, err := e.intoto.verifier.Verify(ctx, in)
	if err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	d.InToto = &InTotoEvidence{LayoutSHA256: res.LayoutSHA256, Steps: res.Steps, Functionaries: res.Functionaries, Cached: cached}
	return d
}
