package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/cache"
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
}

// Server is the HTTP face of trustproxy.
type Server struct {
	upstreams       map[string]*upstream
	defaultUpstream *upstream
	policy          *policy.Engine
	cache           *cache.Cache
	log             *zap.Logger
	approvals       *approvals
	metrics         *metrics
	registry        *prometheus.Registry
	ready           func() error
	offline         map[string]bool // upstream names served from the cache only
	access          *access.Authority
	rate            *rateLimiter
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
		log: opts.Logger, approvals: newApprovals(opts.Cache, opts.Logger.Named("approvals")), registry: opts.Registry, ready: opts.Ready,
		offline: map[string]bool{},
		access:  opts.Access, rate: newRateLimiter(opts.Limits.withDefaults(), time.Now),
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
	return s, nil
}

// ServeHTTP routes: /v2/ is the OCI API; /metrics, /healthz and /readyz are
// for operators.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" && s.access != nil {
		s.serveToken(w, r)
		return
	}
	if refuseBody(w, r) {
		return
	}
	switch r.URL.Path {
	case "/metrics", "/readyz":
		if !s.operator(w, r) {
			return
		}
	}
	if !strings.HasPrefix(r.URL.Path, "/v2") {
		s.serveOperator(w, r)
		return
	}
	s.serveAPI(w, r)
}

// OperatorHandler serves /metrics, /healthz and /readyz without client
// authentication, for a listener of their own.
func (s *Server) OperatorHandler() http.Handler { return http.HandlerFunc(s.serveOperator) }

func (s *Server) serveOperator(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
		return
	case "/readyz":
		w.Header().Set("Content-Type", "text/plain")
		if s.ready != nil {
			if err := s.ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
		return
	}
	http.NotFound(w, r)
}

// serveAPI answers the OCI distribution API under /v2/.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
		http.NotFound(w, r)
		return
	}
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	info := &requestInfo{}
	defer func() {
		// A handler that aborts (bad bytes from upstream) panics with
		// http.ErrAbortHandler; account for it, then let net/http close
		// the connection.
		p := recover()
		if p != nil {
			rec.aborted = true
		}
		s.accessLog(r, rec, info, time.Since(start))
		if p != nil {
			panic(p)
		}
	}()
	rec.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		info.setErr(writeError(rec, r, errUnsupported(fmt.Sprintf(
			"trustproxy is a read-only verifying proxy: %s is not supported (push to the upstream registry instead)", r.Method))))
		return
	}
	p, oerr := s.authenticate(rec, r)
	info.principal = p.String()
	if rerr := s.limitRate(r, p); rerr != nil {
		oerr = rerr
	}
	if oerr != nil {
		info.setErr(writeError(rec, r, oerr))
		return
	}
	rt, oerr := s.routeRequest(r)
	if oerr == nil {
		oerr = s.authorize(rec, r, p, rt)
	}
	if oerr != nil {
		info.setErr(writeError(rec, r, oerr))
		return
	}
	if rt.upstream != nil {
		info.upstream, info.repo, info.ref = rt.upstream.name, rt.repo, rt.ref
		if rt.viaNS {
			rec.Header().Set("OCI-Namespace", rt.upstream.name)
		}
	}
	var err error
	switch rt.kind {
	case kindBase:
		rec.Header().Set("Content-Type", "application/json")
		_, _ = rec.Write([]byte("{}"))
	case kindManifest:
		info.kind = "manifest"
		err = s.serveManifest(rec, r, rt, info)
	case kindBlob:
		info.kind = "blob"
		err = s.serveBlob(rec, r, rt, info)
	case kindTags:
		info.kind = "tags"
		err = s.serveTags(rec, r, rt, info)
	case kindUpload:
		err = errUnsupported("trustproxy is a read-only verifying proxy: uploads are not supported (push to the upstream registry instead)")
	case kindReferrers:
		err = &ociError{Status: http.StatusNotFound, Code: "UNSUPPORTED", Message: "trustproxy does not serve the referrers API"}
	}
	if err != nil {
		info.setErr(writeError(rec, r, err))
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
