package proxy

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// requestInfo collects what the access log line says about a request.
type requestInfo struct {
	kind      string
	principal string // who, as access authenticated them
	upstream  string
	repo      string
	ref       string
	decision  string // allow, deny, audit-fail, child-of:<target>, attachment-of:<subject digest>
	cache     string // hit, miss, coalesced, ""
	servedBy  string // the host that sent the upstream bytes, after redirects
	errCode   string
	errMsg    string
}

func (i *requestInfo) setErr(oe *ociError) {
	i.errCode, i.errMsg = oe.Code, oe.Message
}

// recorder remembers status and bytes for the access log and metrics.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	wrote   bool
	aborted bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the zero-copy path (sendfile) of the underlying writer
// available to io.Copy for cache hits.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wrote = true
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) accessLog(r *http.Request, rec *recorder, info *requestInfo, d time.Duration) {
	status := rec.status
	if rec.aborted {
		status = 0
	}
	s.metrics.requests.WithLabelValues(info.kind, strconv.Itoa(status)).Inc()
	s.metrics.bytesServed.WithLabelValues(info.kind).Add(float64(rec.bytes))
	fields := []zap.Field{
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", status),
		zap.String("kind", info.kind), zap.String("upstream", info.upstream), zap.String("repository", info.repo),
		zap.String("ref", info.ref), zap.String("decision", info.decision), zap.String("cache", info.cache),
		zap.Int64("bytes", rec.bytes), zap.Duration("duration", d), zap.String("client", clientAddr(r)),
		zap.String("principal", info.principal),
	}
	if info.servedBy != "" {
		fields = append(fields, zap.String("upstream_host", info.servedBy))
	}
	if info.errCode != "" {
		fields = append(fields, zap.String("error_code", info.errCode), zap.String("error", info.errMsg))
	}
	if rec.aborted {
		fields = append(fields, zap.Bool("aborted", true))
	}
	s.log.Info("request", fields...)
}
