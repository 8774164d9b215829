package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy/intoto"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// signyPayload is the in-toto metadata Signy (cnabio/signy
// pkg/intoto/metadata.go) puts inline in a Notary target's custom data:
// the layout's public key (PEM), the signed root layout and the link
// files by name, each as base64 bytes.
type signyPayload struct {
	Key    []byte            `json:"key"`
	Layout []byte            `json:"layout"`
	Links  map[string][]byte `json:"links"`
}

// parseSignyPayload returns the Signy payload of a target's custom data,
// nil if it carries none (no "layout").
func parseSignyPayload(custom json.RawMessage) (*signyPayload, error) {
	var probe struct {
		Layout json.RawMessage `json:"layout"`
	}
	if len(custom) == 0 || json.Unmarshal(custom, &probe) != nil || len(probe.Layout) == 0 {
		return nil, nil
	}
	var p signyPayload
	if err := json.Unmarshal(custom, &p); err != nil {
		return nil, fmt.Errorf("Signy in-toto payload: %w", err)
	}
	if len(p.Layout) == 0 || len(p.Key) == 0 {
		return nil, fmt.Errorf("Signy in-toto payload: layout and key are both required")
	}
	return &p, nil
}

// signyEvidence verifies Signy's inline in-toto payload with the same
// no-exec verifier as spec-301 metadata. The layout key ships in the
// payload it vouches for, so by itself it proves nothing: it must be one of
// the layout keys the rule pins.
func (e *Engine) signyEvidence(ctx context.Context, d Decision, r *Rule, t trustfetch.Target, p *signyPayload, subjectName string, subject digest.Digest) Decision {
	if len(r.InToto.LayoutKeys) == 0 {
		return e.fail(d, fmt.Sprintf("in-toto: target %q carries Signy's inline layout key, which only a key pinned in the rule (inToto.layoutKeys) can make trustworthy; rule %q pins none", t.Name, r.Name))
	}
	var pinned []byte
	for _, k := range r.InToto.LayoutKeys {
		same, err := intoto.SameKey(p.Key, k)
		if err != nil {
			return e.fail(d, fmt.Sprintf("in-toto: Signy layout key of target %q: %v", t.Name, err))
		}
		if same {
			pinned = k
			break
		}
	}
	if pinned == nil {
		return e.fail(d, fmt.Sprintf("in-toto: the layout key in target %q's Signy payload is not pinned by rule %q", t.Name, r.Name))
	}
	limits := r.InToto.Limits.WithDefaults()
	if err := limits.CheckLinkCount(len(p.Links)); err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	names := make([]string, 0, len(p.Links))
	for n := range p.Links {
		names = append(names, n)
	}
	sort.Strings(names)
	in := intoto.Input{Layout: p.Layout, LayoutKeys: [][]byte{pinned}, SubjectName: subjectName,
		SubjectSHA256: subject.Encoded(), Parameters: r.InToto.Parameters, Now: e.intoto.now(), Limits: limits}
	for _, n := range names {
		in.Links = append(in.Links, p.Links[n])
	}
	res, cached, err := e.intoto.verifier.Verify(ctx, in)
	if err != nil {
		return e.fail(d, "in-toto: "+err.Error())
	}
	d.InToto = &InTotoEvidence{LayoutSHA256: res.LayoutSHA256, Steps: res.Steps, Functionaries: res.Functionaries, Cached: cached}
	return d
}
