package proxy

import (
	"errors"
	"fmt"
	"net/http"
)

// DegradedError is what Options.Ready returns when the proxy serves, but
// not at full strength: e.g. a trust server is unreachable and persisted,
// verified trust data is being served until it expires. /readyz answers
// 200 and says so.
type DegradedError struct{ Reason string }

func (e *DegradedError) Error() string { return e.Reason }

// serveReady answers /readyz: 503 while the proxy should take no traffic,
// 200 "ready" or "ready (degraded: …)" otherwise.
func (s *Server) serveReady(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain")
	var err error
	if s.ready != nil {
		err = s.ready()
	}
	var dg *DegradedError
	switch {
	case err == nil:
		_, _ = w.Write([]byte("ready\n"))
	case errors.As(err, &dg):
		_, _ = fmt.Fprintf(w, "ready (degraded: %s)\n", dg.Reason)
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
	}
	_, _ = w.Write([]byte(s.readyDetail()))
}
