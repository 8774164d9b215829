package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/internal/attachment"
	"github.com/trustproxy/trustproxy/policy"
)

// Attachments (signatures, SBOMs, attestations) of an approved subject are
// served in the subject's repository under a grant of their own: the
// subject's approval with attachmentOf set. They are never vouched for by
// the trust data (the client verifies them: cosign and notation check the
// signature against their own keys) and never make anything approved; on
// every use trustproxy re-checks that the subject's approval still holds
// (covering), that the manifest is an artifact naming the subject
// (recheckAttachment), and, as for everything, that the bytes hash to the
// digest.

// recheckAttachment refuses m if g is an attachment grant and m is not an
// attachment of g's subject that g's rule serves.
func (s *Server) recheckAttachment(rt route, m *fetchedManifest, g *grant) error {
	if g.attachmentOf == "" {
		return nil
	}
	_, _, err := s.attachmentGrant(rt, m, g, g.attachmentOf, g.tagged)
	return err
}

// attachmentGrant checks that m may be served as an attachment of subject,
// which g approves, and returns the grant to serve it and its blobs under,
// with what the manifest says of itself.
func (s *Server) attachmentGrant(rt route, m *fetchedManifest, g *grant, subject digest.Digest, tagged bool) (*grant, *attachment.Manifest, error) {
	a, err := attachment.Parse(m.mediaType, m.body, subject, tagged)
	if err == nil {
		if r := s.policy.Rule(rt.upstream.name, rt.repo); r == nil || !r.Attachments.Allows(a.Type()) {
			err = fmt.Errorf("the rule governing %s does not serve attachments of artifact type %q (attachments setting)", rt.repoKey(), a.Type())
		}
	}
	if err != nil {
		return nil, nil, errDenied(fmt.Sprintf("trustproxy: %s@%s is not served as an attachment of %s: %v", rt.repoKey(), m.digest, subject, err))
	}
	return &grant{subject: g.subject, decision: g.decision, attachmentOf: subject, tagged: tagged, attachmentType: a.Type()}, a, nil
}

// serveAttachmentTag answers a manifest request for an attachment tag (see
// attachment.ParseTag) of subject: the referrers tag schema's tag is the
// index of the subject's attachments, built like the referrers API's
// answer (404 when there are none, as a registry answers for a missing
// tag); a cosign tag is the manifest the upstream tag names now, served as
// an attachment if it is one. These tags are never looked up in the trust
// data: they are names of attachments, not of releases.
func (s *Server) serveAttachmentTag(w http.ResponseWriter, r *http.Request, rt route, info *requestInfo, subject digest.Digest, cosign string) error {
	ctx := r.Context()
	g, err := s.subjectGrant(ctx, rt, clientAddr(r), subject, info)
	if err != nil {
		return err
	}
	subj := policy.Subject{Upstream: rt.upstream.name, Repository: rt.repo, Client: clientAddr(r), Tag: rt.ref}
	if cosign == "" {
		m, err := s.referrersTagIndex(ctx, rt, subject, g)
		if err != nil {
			return err
		}
		info.decision = "referrers-of:" + subject.String()
		return s.writeManifest(w, r, m, g.decision, subj, info)
	}
	m, err := s.manifestByTag(ctx, rt, r.Header.Values("Accept"))
	if err != nil {
		return err
	}
	ag, _, err := s.attachmentGrant(rt, m, g, subject, true)
	if err != nil {
		info.decision = "deny"
		return err
	}
	s.approvals.cover(ctx, rt.repoKey(), []covered{{m.digest, int64(len(m.body))}}, ag)
	if err := s.approveTree(ctx, rt, m, ag); err != nil {
		return err
	}
	info.decision = ag.label()
	return s.writeManifest(w, r, m, g.decision, subj, info)
}

// referrersTagIndex is the referrers index of subject as the manifest a
// client using the tag schema itself reads.
func (s *Server) referrersTagIndex(ctx context.Context, rt route, subject digest.Digest, g *grant) (*fetchedManifest, error) {
	descs, err := s.attachments(ctx, rt, subject, g, "")
	if err != nil {
		return nil, err
	}
	if len(descs) == 0 {
		return nil, &ociError{Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN",
			Message: fmt.Sprintf("trustproxy: %s:%s: %s has no attachments trustproxy serves", rt.repoKey(), rt.ref, subject)}
	}
	body, err := json.Marshal(attachment.Index(descs))
	if err != nil {
		return nil, errInternal("trustproxy: encode referrers index: " + err.Error())
	}
	return &fetchedManifest{digest: digest.FromBytes(body), mediaType: ocispec.MediaTypeImageIndex, body: body}, nil
}
