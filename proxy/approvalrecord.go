package proxy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy"
)

// grantRecord is a grant as stored: enough to re-check it against the
// current trust data (policy.Engine.StillApproved) and to log and warn as
// the original decision did. It is never trusted by itself.
type grantRecord struct {
	V              int           `json:"v"`
	Upstream       string        `json:"upstream"`
	Repository     string        `json:"repository"`
	Tag            string        `json:"tag,omitempty"`
	SubjectDigest  digest.Digest `json:"subjectDigest,omitempty"`
	Rule           string        `json:"rule"`
	Mode           policy.Mode   `json:"mode"`
	Trust          string        `json:"trust,omitempty"`
	TargetsVersion int64         `json:"targetsVersion,omitempty"`
	Target         string        `json:"target,omitempty"`
	TargetDigest   digest.Digest `json:"targetDigest,omitempty"`
	Length         int64         `json:"length,omitempty"`
	MediaType      string        `json:"mediaType,omitempty"`
	Reason         string        `json:"reason,omitempty"`
	// Size is the covered digest's size from the approved descriptor.
	Size int64 `json:"size"`
	// AttachmentOf and Tagged: a grant of attachments (grant.attachmentOf).
	AttachmentOf   digest.Digest `json:"attachmentOf,omitempty"`
	Tagged         bool          `json:"tagged,omitempty"`
	AttachmentType string        `json:"attachmentType,omitempty"`
}

const grantRecordVersion = 1

func encodeGrant(g *grant, size int64) ([]byte, error) {
	s, d := g.subject, g.decision
	b, err := json.Marshal(grantRecord{
		V: grantRecordVersion, Upstream: s.Upstream, Repository: s.Repository, Tag: s.Tag, SubjectDigest: s.Digest,
		Rule: d.Rule, Mode: d.Mode, Trust: d.Trust, TargetsVersion: d.TargetsVersion, Target: d.Target,
		TargetDigest: d.Digest, Length: d.Length, MediaType: d.MediaType, Reason: d.Reason, Size: size,
		AttachmentOf: g.attachmentOf, Tagged: g.tagged, AttachmentType: g.attachmentType,
	})
	if err != nil {
		return nil, fmt.Errorf("encode approval of %s: %w", d.Target, err)
	}
	return b, nil
}

func decodeGrant(b []byte) (*grant, int64, error) {
	var r grantRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, -1, fmt.Errorf("decode approval record: %w", err)
	}
	if r.V != grantRecordVersion {
		return nil, -1, fmt.Errorf("approval record version %d, want %d", r.V, grantRecordVersion)
	}
	if r.Upstream == "" || r.Repository == "" || r.Rule == "" {
		return nil, -1, errors.New("approval record without upstream, repository or rule")
	}
	if r.Size < -1 {
		r.Size = -1
	}
	return &grant{
		subject: policy.Subject{Upstream: r.Upstream, Repository: r.Repository, Tag: r.Tag, Digest: r.SubjectDigest},
		decision: policy.Decision{Allowed: true, Mode: r.Mode, Rule: r.Rule, Trust: r.Trust, TargetsVersion: r.TargetsVersion,
			Target: r.Target, Digest: r.TargetDigest, Length: r.Length, MediaType: r.MediaType, Reason: r.Reason},
		attachmentOf: r.AttachmentOf, tagged: r.Tagged, attachmentType: r.AttachmentType,
	}, r.Size, nil
}
