package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v2/"+name+"/manifests/"+tagOrDigest, nil)
	req.Header.Set("Accept", acceptAll)
	req.RemoteAddr = "127.0.0.1:0"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	res := CheckResult{Status: rec.Code, Digest: rec.Header().Get("Docker-Content-Digest"),
		Type: rec.Header().Get("Content-Type"), Warning: rec.Header().Get("Warning")}
	if rec.Code != http.StatusOK {
		var body struct {
			Errors []struct{ Code, Message string }
		}
		b, _ := io.ReadAll(rec.Body)
		if json.Unmarshal(b, &body) == nil && len(body.Errors) > 0 {
			res.Code, res.Message = body.Errors[0].Code, body.Errors[0].Message
		}
	}
	return res, nil
}
