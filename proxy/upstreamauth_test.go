package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// Realms trustproxy refuses to send credentials (or even an anonymous token
// request) to; refused before any request is made.
func TestRealmRefused(t *testing.T) {
	for _, tc := range []struct{ upstream, realm, want string }{
		{"https://registry.example", "http://auth.registry.example/token", "must be https"},
		{"https://registry.example", "https://169.254.169.254/token", "link-local"},
		{"https://registry.example", "https://127.0.0.2/token", "is not"},
		{"http://127.0.0.1:5000", "http://[fe80::1]/token", "link-local"},
		{"https://registry.example", "ftp://auth.registry.example/token", "must be https"},
	} {
		up, err := newUpstream(UpstreamConfig{Name: "u", URL: tc.upstream}, baseTransport(0), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		at := newAuthTransport(up, &authn.Basic{Username: "u", Password: "p"}, "repository:x:pull")
		_, _, err = at.fetchToken(context.Background(), &transport.Challenge{Scheme: "bearer", Parameters: map[string]string{"realm": tc.realm}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("upstream %s, realm %s: %v; want a refusal containing %q", tc.upstream, tc.realm, err, tc.want)
		}
	}
}

// schemeRecorder notes the scheme of every request that reaches the wire.
type schemeRecorder struct {
	mu      sync.Mutex
	schemes []string
	next    http.RoundTripper
}

func (s *schemeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.schemes = append(s.schemes, r.URL.Scheme)
	s.mu.Unlock()
	return s.next.RoundTrip(r)
}

// An http:// upstream is pinged over http only: go-containerregistry would
// try https first, retried, and start http 300 ms later.
func TestPingOnlyTheConfiguredScheme(t *testing.T) {
	reg := testenv.NewRegistry(t)
	rec := &schemeRecorder{next: baseTransport(0)}
	up, err := newUpstream(UpstreamConfig{Name: "u", URL: reg.URL}, rec, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.getChallenge(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.schemes) != 1 || rec.schemes[0] != "http" {
		t.Fatalf("ping requests went out as %v; want one http request", rec.schemes)
	}
}
