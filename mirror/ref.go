package mirror

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy"
)

// parseRef reads "<upstream>/<repository>:<tag>" or
// "<upstream>/<repository>@<digest>", the form policy and the proxy use.
func parseRef(s string) (policy.Subject, error) {
	var subj policy.Subject
	rest := s
	if name, dg, ok := strings.Cut(s, "@"); ok {
		d, err := digest.Parse(dg)
		if err != nil {
			return subj, fmt.Errorf("reference %q: %w", s, err)
		}
		subj.Digest, rest = d, name
	} else if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		subj.Tag, rest = s[i+1:], s[:i]
	} else {
		return subj, fmt.Errorf("reference %q: needs a tag or a digest (<upstream>/<repository>:<tag>)", s)
	}
	up, repo, ok := strings.Cut(rest, "/")
	if !ok || up == "" || repo == "" {
		return subj, fmt.Errorf("reference %q: must start with the upstream name (e.g. docker.io/library/alpine:3.20)", s)
	}
	subj.Upstream, subj.Repository = up, repo
	return subj, nil
}
