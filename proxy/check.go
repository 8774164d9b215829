package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// CheckResult is what a pull of a reference would get.
type CheckResult struct {
	Status  int
	Digest  string
	Type    string
	Warning string
	// Error is the OCI error code and message when refused.
	Code, Message string
}

// Check runs the exact request path a client's manifest GET would take for
// ref ("<upstream>/<repository>:<tag>" or "...@<digest>"), including the
// upstream fetch and verification, and reports the outcome.
func (s *Server) Check(ctx context.Context, ref string) (CheckResult, error) {
	name, tagOrDigest, ok := strings.Cut(ref, "@")
	if !ok {
		i := strings.LastIndex(ref, ":")
		if i < 0 || strings.Contains(ref[i:], "/") {
			return CheckResult{}, fmt.Errorf("reference %q needs a :tag or @digest", ref)
		}
		name, tagOrDigest = ref[:i], ref[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v2/"+name+"/manifests/"+tagOrDigest, nil)
	if err != nil {
		return CheckResult{}, fmt.Errorf("check %s: %w", ref, err)
	}
	req.Header.Set("Accept", acceptAll)
	req.RemoteAddr = "127.0.0.1:0"
	rec := &checkRecorder{header: http.Header{}, code: http.StatusOK}
	s.ServeHTTP(rec, req)
	res := CheckResult{Status: rec.code, Digest: rec.header.Get("Docker-Content-Digest"),
		Type: rec.header.Get("Content-Type"), Warning: rec.header.Get("Warning")}
	if rec.code != http.StatusOK {
		var body struct {
			Errors []struct{ Code, Message string }
		}
		if json.Unmarshal(rec.body.Bytes(), &body) == nil && len(body.Errors) > 0 {
			res.Code, res.Message = body.Errors[0].Code, body.Errors[0].Message
		}
	}
	return res, nil
}

// checkRecorder keeps the response Check asks for; the product binary does
// not link net/http/httptest.
type checkRecorder struct {
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *checkRecorder) Header() http.Header { return r.header }

func (r *checkRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *checkRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
