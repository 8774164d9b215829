package policy

import "github.com/trustproxy/trustproxy/internal/pattern"

// Rule patterns share their syntax with Notary trust pins (internal/pattern).
var (
	validPattern = pattern.Valid
	matches      = pattern.Match
	mismatch     = pattern.Mismatch
	specificity  = pattern.Specificity
)
