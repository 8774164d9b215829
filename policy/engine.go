package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// TrustSource is a trust repository as the policy needs it: the current
// verified index and verified target downloads. *trustfetch.Repository is
// one.
type TrustSource interface {
	Name() string
	Index() (*trustfetch.Index, error)
	FetchTarget(ctx context.Context, t trustfetch.Target) ([]byte, error)
}

// Options are the engine's collaborators.
type Options struct {
	Logger *zap.Logger
	Now    func() time.Time
	// Version names the policy in every audit line (e.g. a hash of the
	// policy section, or a signed policy's version).
	Version string
	// Metrics counts decisions per rule; nil: none.
	Metrics *Metrics
}

// Engine decides. It is safe for concurrent use and holds no per-request
// state: every answer is derived from the current trust data.
type Engine struct {
	rules  []*Rule // most specific first
	byName map[string]*Rule
	trusts map[string]TrustSource
	audit  *zap.Logger
	now    func() time.Time
	intoto *inTotoChecker
	// bundleNames serves PrecheckDigest (precheck.go).
	bundleNames bundleNameSet
	version     string
	metrics     *Metrics
}

// New validates cfg against the trust repositories and builds an engine.
func New(cfg Config, trusts map[string]TrustSource, opts Options) (*Engine, error) {
	names := map[string]bool{}
	for n := range trusts {
		names[n] = true
	}
	if err := cfg.validate(names); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{trusts: trusts, audit: opts.Logger.Named("audit"), now: opts.Now, version: opts.Version, metrics: opts.Metrics}
	e.byName = map[string]*Rule{}
	for i := range cfg.Rules {
		e.rules = append(e.rules, &cfg.Rules[i])
		e.byName[cfg.Rules[i].Name] = &cfg.Rules[i]
	}
	// Most specific pattern first; equally specific ones keep file order.
	sort.SliceStable(e.rules, func(i, j int) bool {
		return specificity(e.rules[i].Match) > specificity(e.rules[j].Match)
	})
	e.intoto = newInTotoChecker(e.now)
	return e, nil
}

// Rule returns the rule that governs upstream/repo, or nil (deny).
func (e *Engine) Rule(upstream, repo string) *Rule {
	key := upstream + "/" + repo
	for _, r := range e.rules {
		if matches(r.Match, key) {
			return r
		}
	}
	return nil
}

// ResolveTag decides a tag request before anything is fetched. Under
// enforce (and audit, when the target exists) the decision carries the
// digest TUF names; the proxy fetches that digest, never the upstream tag.
func (e *Engine) ResolveTag(ctx context.Context, s Subject) Decision {
	d, ix, ok := e.begin(s)
	if !ok || ix == nil {
		return e.log(s, d)
	}
	name := d.Target
	t, found := ix.Lookup(name)
	if !found {
		return e.log(s, e.fail(d, fmt.Sprintf("no target %q", name)))
	}
	if bundleConfigTypes[t.MediaType()] {
		// The target hashes a bundle.json, not a manifest: the index is
		// fetched by tag and must carry exactly that bundle.json
		// (CheckBundle), whose contentDigests bind every image.
		return d
	}
	d.Digest, d.Length, d.MediaType = t.Digest(), t.Length, t.MediaType()
	return d // logged once the bytes are checked (CheckManifest)
}

// CheckManifest decides whether manifest bytes fetched for s may be served.
// For a tag, the bytes must be exactly the target (sha256 and length); for a
// digest, the digest must be a target of this repository's trust name.
func (e *Engine) CheckManifest(ctx context.Context, s Subject, dgst digest.Digest, mediaType string, body []byte) Decision {
	d, ix, ok := e.begin(s)
	if !ok || ix == nil {
		return e.log(s, d)
	}
	t, reason := e.findTarget(ix, d.Target, s, dgst)
	if reason != "" {
		return e.log(s, e.fail(d, reason))
	}
	if sum := sha256.Sum256(body); !sameSHA256(sum, t.SHA256) || int64(len(body)) != t.Length {
		return e.log(s, e.fail(d, fmt.Sprintf("manifest bytes (%s, %d bytes) do not match target %q (%s, %d bytes)",
			digest.FromBytes(body), len(body), t.Name, t.Digest(), t.Length)))
	}
	d.Target, d.Digest, d.Length, d.MediaType = t.Name, t.Digest(), t.Length, t.MediaType()
	return e.log(s, e.evidence(ctx, d, s, t, ix, "manifest.json", dgst))
}

// sameSHA256 compares a sum with a target's lowercase hex sha256 without
// building a digest string per decision.
func sameSHA256(sum [sha256.Size]byte, hexSum string) bool {
	var want [sha256.Size]byte
	if len(hexSum) != 2*sha256.Size {
		return false
	}
	if _, err := hex.Decode(want[:], []byte(hexSum)); err != nil {
		return false
	}
	return sum == want
}

// StillApproved re-derives, cheaply and without I/O, whether an earlier
// approval d of s still holds under the current trust data: the target must
// still exist with the same hash. It is what keeps revocation effective for
// blobs and children of an index after a refresh.
func (e *Engine) StillApproved(s Subject, d Decision) bool {
	r := e.Rule(s.Upstream, s.Repository)
	if r == nil || r.Name != d.Rule {
		return false
	}
	if r.Mode != ModeEnforce {
		return true
	}
	ix, err := indexOf(e.trusts[r.Trust], r.trustName(s.Upstream, s.Repository))
	if err != nil {
		return false
	}
	t, ok := ix.Lookup(d.Target)
	return ok && t.Digest() == d.Digest
}

// begin finds the rule and the current trust index. ok is false when the
// decision is already final (no rule, allow mode, trust data unusable).
func (e *Engine) begin(s Subject) (d Decision, ix *trustfetch.Index, ok bool) {
	r := e.Rule(s.Upstream, s.Repository)
	if r == nil {
		return Decision{Reason: fmt.Sprintf("no policy rule allows %s/%s (default: deny)", s.Upstream, s.Repository)}, nil, false
	}
	d = Decision{Mode: r.Mode, Rule: r.Name, Trust: r.Trust}
	if r.Mode == ModeAllow {
		d.Allowed = true
		return d, nil, false
	}
	name := r.trustName(s.Upstream, s.Repository)
	if s.Tag != "" {
		d.Target = name + ":" + s.Tag
	} else {
		d.Target = name
	}
	ts, found := e.trusts[r.Trust]
	if !found {
		return e.fail(d, fmt.Sprintf("trust repository %q is not configured", r.Trust)), nil, false
	}
	ix, err := indexOf(ts, name)
	if err != nil {
		return e.fail(d, err.Error()), nil, false
	}
	d.TargetsVersion = ix.Versions().Targets
	d.Allowed = true
	return d, ix, true
}

// findTarget finds the target that must vouch for dgst.
func (e *Engine) findTarget(ix *trustfetch.Index, name string, s Subject, dgst digest.Digest) (trustfetch.Target, string) {
	if s.Tag != "" {
		t, ok := ix.Lookup(name)
		if !ok {
			return t, fmt.Sprintf("no target %q", name)
		}
		return t, ""
	}
	if dgst.Algorithm() != digest.SHA256 {
		return trustfetch.Target{}, fmt.Sprintf("digest algorithm %s is not verifiable (TUF targets carry sha256)", dgst.Algorithm())
	}
	for _, t := range ix.ByDigest(dgst.Encoded()) {
		if inScope(t.Name, name) {
			return t, ""
		}
	}
	return trustfetch.Target{}, fmt.Sprintf("%s is not the hash of any target %q:<tag>", dgst, name)
}

// inScope reports whether target name is "<trust name>:<tag>".
func inScope(target, trustName string) bool {
	return len(target) > len(trustName)+1 && target[:len(trustName)] == trustName && target[len(trustName)] == ':'
}

// fail records a failed verdict: a denial under enforce, a warning under
// audit.
func (e *Engine) fail(d Decision, reason string) Decision {
	d.Reason = reason
	d.Allowed = d.Mode == ModeAudit
	return d
}

// log writes the one audit line every decision gets.
func (e *Engine) log(s Subject, d Decision) Decision {
	verdict := "allow"
	switch {
	case !d.Allowed:
		verdict = "deny"
	case d.Mode == ModeAudit && d.Reason != "":
		verdict = "audit-fail"
	case d.Mode == ModeAllow:
		verdict = "allow-exception"
	}
	fields := []zap.Field{
		zap.String("reference", s.Reference()), zap.String("verdict", verdict),
		zap.String("rule", d.Rule), zap.String("mode", string(d.Mode)), zap.String("trust", d.Trust),
		zap.Int64("targets_version", d.TargetsVersion), zap.String("target", d.Target),
		zap.String("digest", d.Digest.String()), zap.String("reason", d.Reason), zap.String("client", s.Client),
		zap.String("policy_version", e.version),
	}
	e.metrics.observe(d.Rule, verdict)
	if d.InToto != nil {
		fields = append(fields, zap.String("intoto_layout_sha256", d.InToto.LayoutSHA256),
			zap.Strings("intoto_steps", d.InToto.Steps), zap.Strings("intoto_functionaries", d.InToto.Functionaries))
	}
	e.audit.Info("decision", fields...)
	return d
}

// Tags lists the tags the trust data vouches for in s's repository. For an
// allow rule, fromTrust is false: the upstream's list is the answer.
func (e *Engine) Tags(s Subject) (tags []string, d Decision, fromTrust bool) {
	d, ix, ok := e.begin(s)
	if !ok || ix == nil {
		return nil, d, false
	}
	prefix := d.Target + ":"
	for _, n := range ix.NamesWithPrefix(prefix) {
		if len(n) > len(prefix) {
			tags = append(tags, n[len(prefix):])
		}
	}
	return tags, d, true
}

// Artifact is a digest and length the trust data may name.
type Artifact struct {
	Digest digest.Digest
	Length int64
}

// Bundle is a resolved CNAB bundle as policy sees it. The proxy resolves
// and cross-checks the bundle; policy decides whether the trust data
// vouches for it.
type Bundle struct {
	Index      Artifact
	BundleJSON Artifact
	// Binds returns an error when a signature over the given subject
	// ("index" or "bundle.json") would not bind every image of the bundle.
	Binds func(subject string) error
}

// bundleConfigTypes are the media types bundle.json is pushed with; a
// target carrying one of them hashes bundle.json, not a manifest. The CNAB
// names are spelled here because policy may not import proxy/cnab, and no
// library it uses names them.
var bundleConfigTypes = map[string]bool{
	"application/vnd.cnab.config.v1+json":        true,
	"application/vnd.cnab.bundle.config.v1+json": true,
	ocispec.MediaTypeImageConfig:                 true,
	string(types.DockerConfigJSON):               true,
}

// CheckBundle decides whether a CNAB bundle may be served as a unit. The
// target may hash the bundle.json (CNAB Security, spec 303) or the index
// (porter's bundle digest). in-toto, if any, runs with bundle.json as the
// subject.
func (e *Engine) CheckBundle(ctx context.Context, s Subject, b Bundle) Decision {
	d, ix, ok := e.begin(s)
	if !ok || ix == nil {
		return e.log(s, d)
	}
	var t trustfetch.Target
	if s.Tag != "" {
		found := false
		if t, found = ix.Lookup(d.Target); !found {
			return e.log(s, e.fail(d, fmt.Sprintf("no target %q", d.Target)))
		}
	} else {
		found := false
		for _, a := range []Artifact{b.Index, b.BundleJSON} {
			for _, c := range ix.ByDigest(a.Digest.Encoded()) {
				if inScope(c.Name, d.Target) {
					t, found = c, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return e.log(s, e.fail(d, fmt.Sprintf("neither the bundle's index %s nor its bundle.json %s is the hash of any target %q:<tag>",
				b.Index.Digest, b.BundleJSON.Digest, d.Target)))
		}
	}
	var subject string
	switch {
	case t.Digest() == b.BundleJSON.Digest && t.Length == b.BundleJSON.Length:
		subject = "bundle.json"
	case t.Digest() == b.Index.Digest && t.Length == b.Index.Length:
		subject = "index"
	default:
		return e.log(s, e.fail(d, fmt.Sprintf("target %q (%s, %d bytes) matches neither the bundle.json (%s, %d bytes) nor the index (%s, %d bytes)",
			t.Name, t.Digest(), t.Length, b.BundleJSON.Digest, b.BundleJSON.Length, b.Index.Digest, b.Index.Length)))
	}
	if b.Binds != nil {
		if err := b.Binds(subject); err != nil {
			return e.log(s, e.fail(d, err.Error()))
		}
	}
	d.Target, d.Digest, d.Length, d.MediaType = t.Name, t.Digest(), t.Length, t.MediaType()
	return e.log(s, e.evidence(ctx, d, s, t, ix, "bundle.json", b.BundleJSON.Digest))
}

// Deny records a denial the caller established (e.g. a malformed bundle)
// under the rule that governs s, so that it gets the same message and audit
// line as any other decision. Under audit it is a warning.
func (e *Engine) Deny(s Subject, reason string) Decision {
	d, _, ok := e.begin(s)
	if !ok && !d.Allowed {
		return e.log(s, d)
	}
	if d.Mode == ModeAllow {
		d.Reason, d.Allowed = reason, false
		return e.log(s, d)
	}
	return e.log(s, e.fail(d, reason))
}
