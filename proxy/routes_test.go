package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Every registry API request gets one access line, refusals included;
// the operator endpoints and unknown paths are routed by the mux.
func TestRoutesAndAccessLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, envOpts{log: zap.New(core)})
	for _, tc := range []struct {
		method, path string
		status       int
		body         string // substring of the body
		logged       bool   // one access line with this path and status
		errCode      string
	}{
		{http.MethodGet, "/v2/", 200, "{}", true, ""},
		{http.MethodGet, "/v2", 200, "{}", true, ""},
		{http.MethodPut, "/v2/open/app/manifests/1", 405, "read-only verifying proxy", true, "UNSUPPORTED"},
		{http.MethodGet, "/v2/closed/app/manifests/1", 403, "DENIED", true, "DENIED"},
		{http.MethodGet, "/v2/open/app/blobs/sha256:" + strings.Repeat("a", 64), 403, "no approved manifest", true, "DENIED"},
		{http.MethodGet, "/healthz", 200, "ok", false, ""},
		{http.MethodGet, "/readyz", 200, "ready", false, ""},
		{http.MethodGet, "/metrics", 200, "trustproxy_", false, ""},
		{http.MethodGet, "/elsewhere", 404, "not found", false, ""},
	} {
		logs.TakeAll()
		resp := e.get(t, tc.method, tc.path, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
		if api := strings.HasPrefix(tc.path, "/v2"); api && resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("%s %s: no API version header", tc.method, tc.path)
		}
		lines := logs.FilterMessage("request").All()
		if !tc.logged {
			if len(lines) != 0 {
				t.Errorf("%s %s: %d access lines, want none", tc.method, tc.path, len(lines))
			}
			continue
		}
		if len(lines) != 1 {
			t.Errorf("%s %s: %d access lines, want 1", tc.method, tc.path, len(lines))
			continue
		}
		f := lines[0].ContextMap()
		if f["path"] != tc.path || f["status"] != int64(tc.status) || (tc.errCode != "" && f["error_code"] != tc.errCode) {
			t.Errorf("%s %s: access line %v", tc.method, tc.path, f)
		}
	}
}
