package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/internal/refname"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// fetchedManifest is manifest bytes with what the proxy knows about them.
type fetchedManifest struct {
	digest    digest.Digest
	mediaType string
	body      []byte
	cached    bool // came from the cache (already committed)
}

// serveManifest answers GET/HEAD /v2/<name>/manifests/<ref>. Nothing is
// served that policy did not approve for this exact request: by tag through
// the trust data, by digest as a target hash or as part of an approved tree.
func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo) error {
	subj := policy.Subject{Upstream: rt.upstream.name, Repository: rt.repo, Client: clientAddr(r)}
	if dg, err := digest.Parse(rt.ref); err == nil {
		subj.Digest = dg
	} else if refname.IsTag(rt.ref) {
		subj.Tag = rt.ref
	} else {
		return &ociError{Status: http.StatusBadRequest, Code: "MANIFEST_INVALID",
			Message: fmt.Sprintf("trustproxy: %q is neither a tag nor a valid digest", rt.ref)}
	}
	m, g, err := s.approveManifest(r.Context(), rt, subj, r.Header.Values("Accept"), info)
	if err != nil {
		return err
	}
	return s.writeManifest(w, r, m, g.decision, subj, info)
}

// approveManifest decides a manifest request (subj names a tag or a
// digest) and returns the approved bytes with the grant that approves
// them; the referrers API asks it about a subject digest.
func (s *Server) approveManifest(ctx context.Context, rt route, subj policy.Subject, accept []string, info *requestInfo) (*fetchedManifest, *grant, error) {
	// A digest inside an approved tree (a platform manifest of an approved
	// index, an image of an approved bundle) is served under that grant.
	if subj.Digest != "" {
		if g, _ := s.approvals.covering(ctx, rt.repoKey(), subj.Digest, s.policy); g != nil {
			m, err := s.manifestByDigest(ctx, rt, subj.Digest)
			if err != nil {
				return nil, nil, err
			}
			if err := s.recheckAttachment(rt, m, g); err != nil {
				return nil, nil, err
			}
			info.decision = g.label()
			s.metrics.decisions.WithLabelValues("child").Inc()
			if err := s.approveTree(ctx, rt, m, g); err != nil {
				return nil, nil, err
			}
			return m, g, nil
		}
	}

	var m *fetchedManifest
	var err error
	if subj.Tag != "" {
		d := s.policy.ResolveTag(ctx, subj)
		if !d.Allowed {
			return nil, nil, s.deny(info, d, subj)
		}
		if d.Digest != "" {
			// Verified tag resolution: fetch exactly what TUF names; what
			// the upstream tag points at now does not matter.
			m, err = s.manifestByDigest(ctx, rt, d.Digest)
		} else {
			m, err = s.manifestByTag(ctx, rt, accept)
			if err != nil && d.Target != "" {
				m, err = s.bundleIndexFromCache(ctx, rt, d.Target, err)
			}
		}
	} else {
		if d := s.policy.PrecheckDigest(subj); !d.Allowed {
			return nil, nil, s.deny(info, d, subj) // before any upstream request
		}
		m, err = s.manifestByDigest(ctx, rt, subj.Digest)
	}
	if err != nil {
		return nil, nil, err
	}
	var d policy.Decision
	var bundle *cnab.Bundle
	if cnab.IsBundle(m.mediaType, m.body) {
		d, bundle, err = s.checkBundle(ctx, rt, subj, m)
		if err != nil {
			return nil, nil, err
		}
	} else {
		d = s.policy.CheckManifest(ctx, subj, m.digest, m.mediaType, m.body)
	}
	if !d.Allowed {
		if subj.Digest != "" && d.Digest == "" && d.Mode == policy.ModeEnforce {
			d.Reason += fmt.Sprintf("; nor does any approved index or CNAB bundle of %s name it "+
				"(pull the index or bundle by its signed tag through trustproxy first; approvals are kept in the cache storage, "+
				"so a replica or a restarted process on other storage has none)", rt.repoKey())
		}
		return nil, nil, s.deny(info, d, subj)
	}
	if bundle != nil && d.Mode != policy.ModeAllow { // allow: served without verification
		dd, failed, err := s.checkBundleImages(ctx, rt, subj, bundle)
		if err != nil {
			return nil, nil, err
		}
		if failed && !dd.Allowed {
			return nil, nil, s.deny(info, dd, subj)
		} else if failed {
			d = dd
		}
	}
	if s.access != nil && subj.Digest != "" && m.cached && !vouched(d) {
		if err := s.confirmInRepo(ctx, rt, m.digest); err != nil {
			return nil, nil, err
		}
	}
	g := &grant{subject: subj, decision: d}
	if err := s.approveTree(ctx, rt, m, g); err != nil {
		return nil, nil, err
	}
	if bundle != nil {
		s.coverBundle(ctx, rt, bundle, g)
		if subj.Tag != "" && d.Digest != m.digest {
			s.rememberBundleIndex(ctx, rt, d.Target, m.digest)
		}
	}
	info.decision = verdict(d)
	s.metrics.decisions.WithLabelValues(info.decision).Inc()
	return m, g, nil
}

func verdict(d policy.Decision) string {
	switch {
	case d.Mode == policy.ModeAudit && d.Reason != "":
		return "audit-fail"
	case d.Mode == policy.ModeAllow:
		return "allow-exception"
	}
	return "allow"
}

func (s *Server) deny(info *requestInfo, d policy.Decision, subj policy.Subject) error {
	info.decision = "deny"
	s.metrics.decisions.WithLabelValues("deny").Inc()
	return errDenied(d.Message(subj))
}

// approveTree records what the approved manifest m references as covered by
// g, and commits m to the cache: only approved bytes are ever cached.
func (s *Server) approveTree(ctx context.Context, rt route, m *fetchedManifest, g *grant) error {
	items, err := s.refs.items(m.digest, m.mediaType, m.body)
	if err != nil {
		return errDenied(fmt.Sprintf("trustproxy: %s@%s: %v", rt.repoKey(), m.digest, err))
	}
	s.approvals.cover(ctx, rt.repoKey(), items, g)
	if !m.cached {
		if err := s.cache.PutManifest(ctx, m.digest, m.mediaType, m.body); err != nil {
			s.log.Warn("cache manifest", zap.String("digest", m.digest.String()), zap.Error(err))
		}
	}
	return nil
}

func (s *Server) writeManifest(w http.ResponseWriter, r *http.Request, m *fetchedManifest, d policy.Decision, subj policy.Subject, info *requestInfo) error {
	if m.cached {
		info.cache = "hit"
	} else {
		info.cache = "miss"
	}
	h := w.Header()
	h.Set("Content-Type", m.mediaType)
	h.Set("Docker-Content-Digest", m.digest.String())
	h.Set("Content-Length", strconv.Itoa(len(m.body)))
	h.Set("Etag", `"`+m.digest.String()+`"`)
	if warn := d.Warning(subj); warn != "" {
		h.Set("Warning", `299 - "`+sanitizeWarning(warn)+`"`)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.body)
	}
	return nil
}

// manifestByDigest returns the manifest from the cache, or fetches it from
// upstream by digest and checks the bytes hash to it.
func (s *Server) manifestByDigest(ctx context.Context, rt route, dg digest.Digest) (*fetchedManifest, error) {
	if mt, body, err := s.cache.GetManifest(ctx, dg); err == nil {
		return &fetchedManifest{digest: dg, mediaType: mt, body: body, cached: true}, nil
	} else if !errors.Is(err, cache.ErrNotFound) {
		s.log.Warn("cache read manifest", zap.String("digest", dg.String()), zap.Error(err))
	}
	m, err := s.fetchManifest(ctx, rt, dg.String(), []string{acceptAll})
	if err != nil {
		return nil, err
	}
	if m.digest != dg {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s served %s for %s@%s: wrong bytes, refused",
			rt.upstream.name, m.digest, rt.repo, dg))
	}
	return m, nil
}

// manifestByTag asks the upstream what the tag is now (allow mode, or audit
// without a target). A HEAD gives the digest; cached bytes are reused.
func (s *Server) manifestByTag(ctx context.Context, rt route, accept []string) (*fetchedManifest, error) {
	if len(accept) == 0 {
		accept = []string{acceptAll}
	}
	if s.offline[rt.upstream.name] {
		return s.offlineTag(ctx, rt)
	}
	resp, err := s.upstreamDo(ctx, rt, http.MethodHead, "manifests/"+rt.ref, accept)
	if err == nil {
		drain(resp.Body)
		if resp.StatusCode == http.StatusTooManyRequests {
			// A GET would count against the same limit (Docker Hub counts
			// GETs only): pass the 429 on at once.
			return nil, upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"), "manifest "+rt.repoKey()+":"+rt.ref)
		}
		if resp.StatusCode == http.StatusOK {
			if dg, perr := digest.Parse(resp.Header.Get("Docker-Content-Digest")); perr == nil {
				if mt, body, cerr := s.cache.GetManifest(ctx, dg); cerr == nil {
					return &fetchedManifest{digest: dg, mediaType: mt, body: body, cached: true}, nil
				}
			}
		}
	}
	return s.fetchManifest(ctx, rt, rt.ref, accept)
}

// fetchManifest GETs a manifest from upstream, bounded in size.
func (s *Server) fetchManifest(ctx context.Context, rt route, ref string, accept []string) (*fetchedManifest, error) {
	resp, err := s.upstreamDo(ctx, rt, http.MethodGet, "manifests/"+ref, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	what := fmt.Sprintf("manifest %s:%s", rt.repoKey(), ref)
	if resp.StatusCode != http.StatusOK {
		oe := upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"), what)
		drain(resp.Body)
		return nil, oe
	}
	if resp.ContentLength > maxManifestBytes {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: %s: upstream manifest of %d bytes exceeds the %d byte limit", what, resp.ContentLength, maxManifestBytes))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: %s: reading upstream body: %v", what, err))
	}
	if len(body) > maxManifestBytes {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: %s: upstream manifest exceeds the %d byte limit", what, maxManifestBytes))
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: %s: upstream body truncated (%d of %d bytes)", what, len(body), resp.ContentLength))
	}
	return &fetchedManifest{
		digest:    digest.FromBytes(body),
		mediaType: manifestMediaType(resp.Header.Get("Content-Type"), body),
		body:      body,
	}, nil
}

// upstreamDo sends one request to the route's upstream, timing it.
func (s *Server) upstreamDo(ctx context.Context, rt route, method, path string, accept []string) (*http.Response, error) {
	if s.offline[rt.upstream.name] {
		return nil, errOffline(rt, path)
	}
	h := http.Header{}
	for _, a := range accept {
		h.Add("Accept", a)
	}
	start := time.Now()
	resp, err := rt.upstream.do(ctx, method, rt.repo, path, h)
	kind := "manifest"
	if len(path) > 5 && path[:5] == "blobs" {
		kind = "blob"
	}
	s.metrics.upstreamLatency.WithLabelValues(rt.upstream.name, kind).Observe(time.Since(start).Seconds())
	if err != nil {
		var oe *ociError
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, errBadGateway(fmt.Sprintf("trustproxy: upstream %s: %v", rt.upstream.name, err))
	}
	s.metrics.servedBy.WithLabelValues(rt.upstream.name, kind, resp.Request.URL.Host).Inc()
	return resp, nil
}

// sanitizeWarning keeps a Warning header value a valid quoted string.
func sanitizeWarning(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b[i] = '\''
		}
	}
	return string(b)
}
