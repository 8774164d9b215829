package policy

import (
	"errors"
	"slices"
)

// Attachments says which attachments (signatures, SBOMs, attestations
// referring to an approved subject) a rule's repositories serve. The zero
// value serves all of them: clients verify attachments themselves, and the
// proxy serves only artifacts naming an approved subject.
type Attachments struct {
	// Disabled serves none: the referrers API answers an empty list.
	Disabled bool
	// ArtifactTypes, if set, are the only artifact types served (the
	// manifest's artifactType, else its config media type, as the
	// referrers API reports them).
	ArtifactTypes []string
}

// Allows reports whether an attachment of artifactType may be served.
func (a Attachments) Allows(artifactType string) bool {
	if a.Disabled {
		return false
	}
	return len(a.ArtifactTypes) == 0 || slices.Contains(a.ArtifactTypes, artifactType)
}

func (a Attachments) validate() error {
	if a.Disabled && len(a.ArtifactTypes) > 0 {
		return errors.New("disabled and artifactTypes exclude each other")
	}
	if slices.Contains(a.ArtifactTypes, "") {
		return errors.New("an empty artifact type")
	}
	return nil
}
