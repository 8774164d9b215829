package proxy

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/policy"
)

// Parts are what a configuration reload replaces as one: the policy, the
// upstreams it routes to and the access rules.
type Parts struct {
	Upstreams []UpstreamConfig
	Policy    *policy.Engine
	// Access is who may pull what (nil: no client authentication).
	Access *access.Authority
}

// Reloaded returns a server with p's policy and upstreams that shares every
// long-lived part of s (cache, approvals, metrics, rate limits). s itself
// is unchanged, so the requests it is serving finish under its policy.
func (s *Server) Reloaded(p Parts) (*Server, error) {
	if p.Policy == nil {
		return nil, fmt.Errorf("reload: a policy engine is required")
	}
	// New validates the upstreams exactly as at start; its own metrics go
	// to a registry nobody reads, the shared ones stay s's.
	fresh, err := New(Options{Upstreams: p.Upstreams, Policy: p.Policy, Cache: s.cache, Logger: s.log,
		Registry: prometheus.NewRegistry(), Transport: s.transport, Access: p.Access})
	if err != nil {
		return nil, err
	}
	n := *s
	n.upstreams, n.defaultUpstream, n.offline, n.policy = fresh.upstreams, fresh.defaultUpstream, fresh.offline, fresh.policy
	n.access = fresh.access
	n.handler = n.routes() // the middlewares close over the server they serve
	return &n, nil
}

// Policy is the engine s decides with.
func (s *Server) Policy() *policy.Engine { return s.policy }

// Live serves every request with the Server that is current when the
// request starts, for the whole request: a reload never shows one request
// a mix of two policies, and requests in flight finish under the old one.
type Live struct {
	cur atomic.Pointer[Server]
}

// NewLive serves s until the first Swap.
func NewLive(s *Server) *Live {
	l := &Live{}
	l.cur.Store(s)
	return l
}

// Swap makes s serve every request that starts from now on.
func (l *Live) Swap(s *Server) { l.cur.Store(s) }

// Current is the server new requests get.
func (l *Live) Current() *Server { return l.cur.Load() }

func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.cur.Load().ServeHTTP(w, r) }

// readyDetail is what Options.Detail adds to /readyz.
func (s *Server) readyDetail() string {
	if s.detail == nil {
		return ""
	}
	return s.detail()
}
