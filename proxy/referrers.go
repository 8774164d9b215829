package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/trustproxy/trustproxy/internal/attachment"
	"github.com/trustproxy/trustproxy/policy"
)

const (
	// maxReferrers bounds the referrers one subject's listing checks.
	maxReferrers = 256
	// maxReferrerPages bounds the upstream pages (Link: rel="next") read.
	maxReferrerPages = 8
	// referrerFetchers bounds concurrent fetches of listed referrers.
	referrerFetchers = 8
)

// serveReferrers answers GET/HEAD /v2/<name>/referrers/<digest>: the
// attachments of an approved subject as an OCI image index, whatever the
// upstream supports (the referrers API, or the referrers tag schema behind
// it). A subject trustproxy would not serve in this repository has none:
// the request is denied like a pull of the subject.
func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo) error {
	subject, err := digest.Parse(rt.ref)
	if err != nil {
		return errDigestInvalid(fmt.Sprintf("trustproxy: invalid subject digest %q: %v", rt.ref, err))
	}
	artifactType := r.URL.Query().Get("artifactType")
	var descs []ocispec.Descriptor
	g, err := s.subjectGrant(r.Context(), rt, clientAddr(r), subject, info)
	switch {
	case err != nil && asOCIError(err).Status == http.StatusNotFound:
		// A subject the upstream does not have (under a rule that would
		// serve it) has no attachments trustproxy serves; the spec wants
		// an empty list, never a 404, from a registry with the API.
	case err != nil:
		return err
	default:
		if descs, err = s.attachments(r.Context(), rt, subject, g, artifactType); err != nil {
			return err
		}
	}
	info.decision = "referrers-of:" + subject.String()
	body, err := json.Marshal(attachment.Index(attachment.Filter(descs, artifactType)))
	if err != nil {
		return errInternal("trustproxy: encode referrers index: " + err.Error())
	}
	h := w.Header()
	h.Set("Content-Type", ocispec.MediaTypeImageIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if artifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// subjectGrant is the approval under which subject would be served in rt's
// repository, decided exactly as a manifest request for it (and with the
// same audit line). A refusal names the referrers request.
func (s *Server) subjectGrant(ctx context.Context, rt route, client string, subject digest.Digest, info *requestInfo) (*grant, error) {
	subj := policy.Subject{Upstream: rt.upstream.name, Repository: rt.repo, Client: client, Digest: subject}
	_, g, err := s.approveManifest(ctx, rt, subj, nil, &requestInfo{})
	if err != nil {
		oe := asOCIError(err)
		if oe.Code == "DENIED" {
			info.decision = "deny"
			s.metrics.decisions.WithLabelValues("deny").Inc()
			return nil, errDenied(fmt.Sprintf("trustproxy: attachments of %s@%s are served only for a subject trustproxy serves: %s",
				rt.repoKey(), subject, oe.Message))
		}
		return nil, oe
	}
	return g, nil
}

// attachments lists the referrers of subject that may be served as its
// attachments under g: each listed manifest is fetched, hashed and checked
// (attachment.Parse), then covered by an attachment grant so that it and
// its blobs can be pulled. The descriptors are derived from the manifests,
// never taken from the upstream's listing. artifactType, if set, is passed
// on to the upstream as a hint; the caller filters.
func (s *Server) attachments(ctx context.Context, rt route, subject digest.Digest, g *grant, artifactType string) ([]ocispec.Descriptor, error) {
	if r := s.policy.Rule(rt.upstream.name, rt.repo); r == nil || r.Attachments.Disabled {
		return nil, nil // nothing to ask the upstream about
	}
	listed, err := s.upstreamReferrers(ctx, rt, subject, artifactType)
	if err != nil {
		return nil, err
	}
	out := make([]*ocispec.Descriptor, len(listed))
	var eg errgroup.Group
	eg.SetLimit(referrerFetchers)
	for i, dg := range listed {
		eg.Go(func() error {
			d, err := s.checkReferrer(ctx, rt, subject, dg, g)
			if err != nil {
				var oe *ociError
				if errors.As(err, &oe) && oe.Status == http.StatusTooManyRequests {
					return oe
				}
				s.log.Info("referrer not served", zap.String("repository", rt.repoKey()), zap.Stringer("subject", subject),
					zap.Stringer("referrer", dg), zap.Error(err))
				return nil
			}
			out[i] = d
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	descs := make([]ocispec.Descriptor, 0, len(out))
	for _, d := range out {
		if d != nil {
			descs = append(descs, *d)
		}
	}
	return descs, nil
}

// checkReferrer fetches one listed referrer of subject (which g approves)
// and, if it may be served as an attachment, covers it and its blobs.
func (s *Server) checkReferrer(ctx context.Context, rt route, subject, dg digest.Digest, g *grant) (*ocispec.Descriptor, error) {
	m, err := s.manifestByDigest(ctx, rt, dg)
	if err != nil {
		return nil, err
	}
	ag, a, err := s.attachmentGrant(rt, m, g, subject, false)
	if err != nil {
		return nil, err
	}
	s.approvals.cover(ctx, rt.repoKey(), []covered{{m.digest, int64(len(m.body))}}, ag)
	if err := s.approveTree(ctx, rt, m, ag); err != nil {
		return nil, err
	}
	d := a.Descriptor(m.mediaType, m.digest, int64(len(m.body)))
	return &d, nil
}

// upstreamReferrers lists the digests the upstream says refer to subject:
// its referrers API, or, where it has none (distribution, GHCR, older
// Docker Hub: a 404, 400 or 406, or a 200 that is not an OCI index, as the
// distribution spec and go-containerregistry define it), the index under
// the referrers tag schema's tag. An offline upstream has only the tag,
// which mirror import built from the attachments it verified.
func (s *Server) upstreamReferrers(ctx context.Context, rt route, subject digest.Digest, artifactType string) ([]digest.Digest, error) {
	if !s.offline[rt.upstream.name] {
		q := url.Values{}
		if artifactType != "" {
			q.Set("artifactType", artifactType)
		}
		listed, supported, err := s.referrersAPI(ctx, rt, subject, q)
		if err != nil || supported {
			return listed, err
		}
	}
	trt := rt
	trt.ref = attachment.SchemaTag(subject)
	m, err := s.manifestByTag(ctx, trt, []string{ocispec.MediaTypeImageIndex})
	if err != nil {
		if oe := asOCIError(err); oe.Status == http.StatusNotFound {
			return nil, nil // no referrers yet
		}
		return nil, err
	}
	return referrerDigests(m.body, nil)
}

// referrersAPI reads the upstream's referrers API, following its pages.
// supported is false when the upstream answered as one without the API.
func (s *Server) referrersAPI(ctx context.Context, rt route, subject digest.Digest, q url.Values) (listed []digest.Digest, supported bool, err error) {
	path := "referrers/" + subject.String()
	next := path
	if len(q) > 0 {
		next += "?" + q.Encode()
	}
	for page := 0; next != "" && page < maxReferrerPages; page++ {
		resp, err := s.upstreamDo(ctx, rt, http.MethodGet, next, []string{ocispec.MediaTypeImageIndex})
		if err != nil {
			return nil, false, err
		}
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != http.StatusOK || ct != ocispec.MediaTypeImageIndex {
			drain(resp.Body)
			switch resp.StatusCode {
			case http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable:
				if page == 0 {
					return nil, false, nil
				}
			}
			return nil, false, upstreamStatusError(rt.upstream.name, resp.StatusCode, resp.Header.Get("Retry-After"),
				"referrers of "+rt.repoKey()+"@"+subject.String())
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
		resp.Body.Close()
		if err != nil || len(body) > maxManifestBytes {
			return nil, false, errBadGateway(fmt.Sprintf("trustproxy: referrers of %s@%s: unreadable or over %d bytes: %v",
				rt.repoKey(), subject, maxManifestBytes, err))
		}
		if listed, err = referrerDigests(body, listed); err != nil {
			return nil, false, errBadGateway(fmt.Sprintf("trustproxy: referrers of %s@%s: %v", rt.repoKey(), subject, err))
		}
		next = nextPage(resp.Header.Get("Link"), "/v2/"+rt.repo+"/"+path, path)
	}
	return listed, true, nil
}

// referrerDigests appends the distinct digests an index lists to listed,
// at most maxReferrers in all.
func referrerDigests(body []byte, listed []digest.Digest) ([]digest.Digest, error) {
	var ix struct {
		Manifests []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(body, &ix); err != nil {
		return listed, fmt.Errorf("referrers index: %w", err)
	}
	seen := map[digest.Digest]bool{}
	for _, d := range listed {
		seen[d] = true
	}
	for _, m := range ix.Manifests {
		if len(listed) == maxReferrers {
			break
		}
		if m.Digest.Validate() != nil || seen[m.Digest] {
			continue
		}
		seen[m.Digest] = true
		listed = append(listed, m.Digest)
	}
	return listed, nil
}

// nextPage is the upstream path of the page a Link header's rel="next"
// names, if it continues the same listing (wantPath); else "".
func nextPage(link, wantPath, path string) string {
	for _, part := range strings.Split(link, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil || u.Path != wantPath {
			return ""
		}
		if u.RawQuery == "" {
			return path
		}
		return path + "?" + u.RawQuery
	}
	return ""
}
