package policy

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Subject is what a client asked for.
type Subject struct {
	Upstream   string
	Repository string
	Tag        string        // set for a tag request
	Digest     digest.Digest // set for a digest request
	Client     string        // client address, for the audit log
}

// Reference is the subject as a person writes it: docker.io/acme/app:1.2.
func (s Subject) Reference() string {
	r := s.Upstream + "/" + s.Repository
	if s.Tag != "" {
		return r + ":" + s.Tag
	}
	return r + "@" + s.Digest.String()
}

// Decision is the policy's answer, with everything an audit line and a
// denial message need.
type Decision struct {
	Allowed bool
	Mode    Mode
	Rule    string
	Trust   string
	// TargetsVersion is the trust repository's targets version used.
	TargetsVersion int64
	// Target is the TUF target name that vouched (or was looked for).
	Target string
	// Digest, Length and MediaType: for an enforced tag, what TUF says the
	// tag is; the proxy fetches exactly this digest.
	Digest    digest.Digest
	Length    int64
	MediaType string
	// Reason says why it was denied, or in audit mode why enforce would
	// have denied it.
	Reason string
	// InToto describes the in-toto evidence that was verified, if any.
	InToto *InTotoEvidence
}

// InTotoEvidence is what the audit line records of an in-toto verification.
type InTotoEvidence struct {
	LayoutSHA256  string
	Steps         []string
	Functionaries []string
	Cached        bool
}

// Warning is the text for the audit-mode Warning header, "" if none.
func (d Decision) Warning(s Subject) string {
	if d.Mode != ModeAudit || d.Reason == "" {
		return ""
	}
	return fmt.Sprintf("trustproxy audit: %s would be denied by rule %q (trust %q): %s", s.Reference(), d.Rule, d.Trust, d.Reason)
}

// Message is the denial a person reads in `docker pull` output.
func (d Decision) Message(s Subject) string {
	if d.Rule == "" {
		return fmt.Sprintf("trustproxy: %s denied: %s", s.Reference(), d.Reason)
	}
	if d.Trust == "" {
		return fmt.Sprintf("trustproxy: %s denied by rule %q: %s", s.Reference(), d.Rule, d.Reason)
	}
	return fmt.Sprintf("trustproxy: %s denied by rule %q (trust %q targets v%d): %s",
		s.Reference(), d.Rule, d.Trust, d.TargetsVersion, d.Reason)
}
