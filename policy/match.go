package policy

import "github.com/trustproxy/trustproxy/internal/pattern"

// Rule patterns share their syntax with Notary trust pins (internal/pattern).
var (
	validPattern = pattern.Valid
	matches      = pattern.Match
	specificity  = pattern.Specificity
)
