package proxy

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"
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
