package proxy

import (
	"fmt"
	"net/http"
	"strings"
)

// Repository is where ref ("<upstream>/<repository>:<tag>", "...@<digest>",
// or a name the default upstream takes) is routed: the configured upstream
// and the repository on it, exactly as a pull of ref would be.
func (s *Server) Repository(ref string) (upstream, repo string, err error) {
	name, _, ok := strings.Cut(ref, "@")
	if !ok {
		if i := strings.LastIndex(ref, ":"); i >= 0 && !strings.Contains(ref[i:], "/") {
			name = ref[:i]
		}
	}
	req, err := http.NewRequest(http.MethodGet, "/v2/"+name+"/manifests/latest", nil)
	if err != nil {
		return "", "", fmt.Errorf("reference %q: %w", ref, err)
	}
	rt, oerr := s.routeRequest(req)
	if oerr != nil {
		return "", "", fmt.Errorf("reference %q: %s", ref, oerr.Message)
	}
	return rt.upstream.name, rt.repo, nil
}
