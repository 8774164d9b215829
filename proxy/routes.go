package proxy

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustproxy/trustproxy/access"
)

// routes is the server's handler: an http.ServeMux for the endpoints and,
// for the registry API, a chain of middlewares, outermost first:
//
//	refuseBodies → accessLogged → readOnlyAPI → authenticated → serveAPI
//
// accessLogged writes one access line per request, also for refusals and
// aborted responses; readOnlyAPI sets the API version header and refuses
// writes; authenticated finds the principal (and charges the rate limit),
// which serveAPI's authorization reads with principalFrom. A new
// cross-cutting step is one more func(http.Handler) http.Handler in this
// chain; it reads what the access line will say with requestInfoFrom.
func (s *Server) routes() http.Handler {
	api := s.accessLogged(readOnlyAPI(s.authenticated(http.HandlerFunc(s.serveAPI))))
	mux := http.NewServeMux()
	mux.Handle("/v2/", api)
	mux.Handle("/v2", api)
	ops := s.operatorMux()
	mux.Handle("/healthz", ops)
	mux.Handle("/metrics", s.operatorsOnly(ops))
	mux.Handle("/readyz", s.operatorsOnly(ops))

	top := http.NewServeMux()
	if s.access != nil {
		top.HandleFunc("/token", s.serveToken) // reads its own (small) form body
	}
	top.Handle("/", refuseBodies(mux))
	return top
}

// operatorMux serves the operator endpoints: /metrics, /healthz, /readyz.
func (s *Server) operatorMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { s.serveReady(w) })
	return mux
}

// operatorsOnly lets only operators through (see operator).
func (s *Server) operatorsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.operator(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// refuseBodies closes a request that carries a body; see refuseBody.
func refuseBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !refuseBody(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

type requestInfoKey struct{}

// requestInfoFrom is what the access line of ctx's request will say; the
// handlers inside accessLogged fill it in.
func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{} // outside accessLogged (tests calling a handler directly)
}

// accessLogged writes the access line and metrics of every request it
// wraps. A handler that aborts (bad bytes from upstream) panics with
// http.ErrAbortHandler: the line records it, then net/http closes the
// connection.
func (s *Server) accessLogged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		info := &requestInfo{}
		defer func() {
			p := recover()
			if p != nil {
				rec.aborted = true
			}
			s.accessLog(r, rec, info, time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	})
}

// readOnlyAPI marks responses as the registry API and refuses every method
// but GET and HEAD: trustproxy never writes upstream.
func readOnlyAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			requestInfoFrom(r.Context()).setErr(writeError(w, r, errUnsupported(fmt.Sprintf(
				"trustproxy is a read-only verifying proxy: %s is not supported (push to the upstream registry instead)", r.Method))))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type principalKey struct{}

// principalFrom is who sent ctx's request, as authenticated found.
func principalFrom(ctx context.Context) access.Principal {
	p, _ := ctx.Value(principalKey{}).(access.Principal)
	return p
}

// authenticated finds the request's principal and charges it one request
// of its rate limit; a failed login is challenged (401), an exhausted
// limit refused (429).
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoFrom(r.Context())
		p, oerr := s.authenticate(w, r)
		info.principal = p.String()
		if rerr := s.limitRate(r, p); rerr != nil {
			oerr = rerr
		}
		if oerr != nil {
			info.setErr(writeError(w, r, oerr))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
