package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/trustproxy/trustproxy/internal/refname"
)

// kind is what a /v2/ request asks for.
type kind int

const (
	kindBase kind = iota
	kindManifest
	kindBlob
	kindTags
	kindUpload
	kindReferrers
)

// route is a parsed request: which configured upstream, which repository on
// it, and which object.
type route struct {
	upstream *upstream
	repo     string // repository on the upstream, e.g. library/alpine
	name     string // the repository as the client named it (token scopes use it)
	kind     kind
	ref      string // tag or digest (manifests), digest (blobs)
	viaNS    bool   // the upstream was named by containerd's ?ns= parameter
}

// repoKey is the repository as policy and approvals see it: <upstream>/<repo>.
func (rt route) repoKey() string { return rt.upstream.name + "/" + rt.repo }

// maxNameLength is the distribution spec's limit on a repository name as
// the client names it (refname also bounds host/name to 255).
const maxNameLength = 255

// routeRequest parses r against the configured upstreams. The upstream is
// named by (in this order) the ?ns= parameter, the first path component, or
// the default upstream. ns and the prefix are closed-world keys into the
// configuration: nothing a client sends is ever dialled.
func (s *Server) routeRequest(r *http.Request) (route, *ociError) {
	p := strings.TrimPrefix(r.URL.Path, "/v2/")
	if p == "" || r.URL.Path == "/v2" {
		return route{kind: kindBase}, nil
	}
	var rt route
	var name string
	switch {
	case strings.Contains(p, "/blobs/uploads"):
		return route{kind: kindUpload}, nil
	case cut(p, "/manifests/", &name, &rt.ref):
		rt.kind = kindManifest
	case cut(p, "/blobs/", &name, &rt.ref):
		rt.kind = kindBlob
	case strings.HasSuffix(p, "/tags/list"):
		rt.kind, name = kindTags, strings.TrimSuffix(p, "/tags/list")
	case cut(p, "/referrers/", &name, &rt.ref):
		rt.kind = kindReferrers
	default:
		return rt, errNameUnknown("trustproxy: unknown API path " + r.URL.Path)
	}
	rt.name = name
	if ns := r.URL.Query().Get("ns"); ns != "" {
		u, ok := s.upstreams[ns]
		if !ok {
			return rt, errNameUnknown("trustproxy: namespace " + quote(ns) + " (?ns=) is not a configured upstream")
		}
		rt.upstream, rt.viaNS, rt.repo = u, true, name
	} else if first, rest, ok := strings.Cut(name, "/"); ok && s.upstreams[first] != nil {
		rt.upstream, rt.repo = s.upstreams[first], rest
	} else if s.defaultUpstream != nil {
		rt.upstream, rt.repo = s.defaultUpstream, name
	} else {
		return rt, errNameUnknown("trustproxy: " + quote(name) + " names no configured upstream: prefix it with one (e.g. /v2/docker.io/" + name + ") or mark an upstream default")
	}
	host := rt.upstream.base.Host
	if rt.upstream.dockerHub {
		host = refname.DockerHub
	}
	if len(name) > maxNameLength {
		return rt, errNameInvalid(fmt.Sprintf("trustproxy: repository name of %d characters is longer than the %d the distribution spec allows", len(name), maxNameLength))
	}
	repo, err := refname.Repository(host, rt.repo) // adds Docker Hub's library/
	if err != nil {
		return rt, errNameInvalid("trustproxy: " + err.Error())
	}
	rt.repo = repo
	return rt, nil
}

// cut splits p at the last occurrence of sep into name and ref.
func cut(p, sep string, name, ref *string) bool {
	i := strings.LastIndex(p, sep)
	if i <= 0 {
		return false
	}
	*name, *ref = p[:i], p[i+len(sep):]
	return *ref != "" && !strings.Contains(*ref, "/")
}

func quote(s string) string { return `"` + s + `"` }
