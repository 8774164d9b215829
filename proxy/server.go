package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/internal/attachment"
	"github.com/trustproxy/trustproxy/policy"
)

// Options are the server's parts; New assembles them.
type Options struct {
	Upstreams []UpstreamConfig
	Policy    *policy.Engine
	Cache     *cache.Cache
	Logger    *zap.Logger
	// Registry receives the proxy's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Transport is the base transport for upstream requests (nil: a tuned
	// default). Tests inject one to count or break traffic.
	Transport http.RoundTripper
	// Ready reports whether the proxy should take traffic (/readyz), e.g.
	// that every trust repository has verified data. nil: always ready.
	Ready func() error
	// Access authenticates clients and says who may pull what; nil: no
	// client authentication (refused when an upstream has credentials).
	Access *access.Authority
	// Limits bound what one client can take.
	Limits Limits
	// Detail adds lines to /readyz (e.g. the last configuration reload's
	// failure, which does not make the proxy unready). nil: none.
	Detail func() string
}

// Server is the HTTP face of trustproxy.
type Server struct {
	upstreams       map[string]*upstream
	defaultUpstream *upstream
	policy          *policy.Engine
	cache           *cache.Cache
	log             *zap.Logger
	approvals       *approvals
	refs            *refsMemo // what cached manifests reference (manifestmem.go)
	metrics         *metrics
	registry        *prometheus.Registry
	ready           func() error
	offline         map[string]bool // upstream names served from the cache only
	access          *access.Authority
	rate            *rateLimiter
	handler         http.Handler // routes()
	transport       http.RoundTripper
	detail          func() string
}

// New validates the upstream configuration and builds a server. It never
// contacts an upstream: the proxy starts even when they are down.
func New(opts Options) (*Server, error) {
	if opts.Policy == nil || opts.Cache == nil {
		return nil, errors.New("proxy: a policy engine and a cache are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		upstreams: map[string]*upstream{}, policy: opts.Policy, cache: opts.Cache,
		log: opts.Logger, approvals: newApprovals(opts.Cache, opts.Logger.Named("approvals")), refs: newRefsMemo(), registry: opts.Registry, ready: opts.Ready,
		offline: map[string]bool{}, transport: opts.Transport, detail: opts.Detail,
		access: opts.Access, rate: newRateLimiter(opts.Limits.withDefaults(), time.Now),
	}
	if err := checkUpstreamCredentials(opts.Upstreams, opts.Access); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(opts.Registry)
	if len(opts.Upstreams) == 0 {
		return nil, errors.New("proxy: at least one upstream is required")
	}
	for i, uc := range opts.Upstreams {
		if uc.Name == "" || strings.ContainsAny(uc.Name, "/ ?#") {
			return nil, fmt.Errorf("upstreams[%d].name: %q must be a non-empty name without '/'", i, uc.Name)
		}
		if s.upstreams[uc.Name] != nil {
			return nil, fmt.Errorf("upstreams[%d].name: duplicate upstream %q", i, uc.Name)
		}
		rt := opts.Transport
		if rt == nil {
			rt = baseTransport(uc.Timeout)
		}
		u, err := newUpstream(uc, rt, opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		s.upstreams[uc.Name] = u
		if uc.Offline {
			s.offline[uc.Name] = true
		}
		if uc.Default {
			if s.defaultUpstream != nil {
				return nil, fmt.Errorf("upstreams[%d].default: both %q and %q are marked default", i, s.defaultUpstream.name, uc.Name)
			}
			s.defaultUpstream = u
		}
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the server's handler chain; see routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// OperatorHandler serves /metrics, /healthz and /readyz without client
// authentication, for a listener of their own.
func (s *Server) OperatorHandler() http.Handler { return s.operatorMux() }

// serveAPI answers the OCI distribution API under /v2/ for a request the
// middlewares have logged, checked and authenticated: route, authorize,
// dispatch.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	info := requestInfoFrom(r.Context())
	rt, oerr := s.routeRequest(r)
	if oerr == nil {
		oerr = s.authorize(w, r, principalFrom(r.Context()), rt)
	}
	if oerr != nil {
		info.setErr(writeError(w, r, oerr))
		return
	}
	if rt.upstream != nil {
		info.upstream, info.repo, info.ref = rt.upstream.name, rt.repo, rt.ref
		if rt.viaNS {
			w.Header().Set("OCI-Namespace", rt.upstream.name)
		}
	}
	var err error
	switch rt.kind {
	case kindBase:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	case kindManifest:
		info.kind = "manifest"
		if subject, cosign, ok := attachment.ParseTag(rt.ref); ok {
			err = s.serveAttachmentTag(w, r, rt, info, subject, cosign)
		} else {
			err = s.serveManifest(w, r, rt, info)
		}
	case kindBlob:
		info.kind = "blob"
		err = s.serveBlob(w, r, rt, info)
	case kindTags:
		info.kind = "tags"
		err = s.serveTags(w, r, rt, info)
	case kindUpload:
		err = errUnsupported("trustproxy is a read-only verifying proxy: uploads are not supported (push to the upstream registry instead)")
	case kindReferrers:
		info.kind = "referrers"
		err = s.serveReferrers(w, r, rt, info)
	}
	if err != nil {
		info.setErr(writeError(w, r, err))
	}
}

// clientAddr is the client's address for audit lines.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
