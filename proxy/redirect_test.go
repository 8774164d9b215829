package proxy

import (
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestRedirectAllowed(t *testing.T) {
	for _, tc := range []struct {
		upstream, from, to string
		refused            string // substring of the error; "" = allowed
	}{
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://cdn.example/blob?sig=1", ""},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "http://cdn.example/blob", "downgrade"},
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/x/blobs/d", "http://127.0.0.1:9000/blob", ""},
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/x/blobs/d", "http://127.0.0.2:9000/blob", ""},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://169.254.169.254/latest/meta-data", "link-local"},
		{"http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/x/blobs/d", "http://169.254.169.254/", "link-local"},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://0.0.0.0/", "unspecified"},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://127.0.0.1:8080/", "is not"},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://[::1]/", "is not"},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "https://10.1.2.3/", "is not"},
		{"https://10.0.0.5", "https://10.0.0.5/v2/x/blobs/d", "https://10.0.0.6/", ""},
		{"https://registry.example", "https://registry.example/v2/x/blobs/d", "file:///etc/passwd", "scheme"},
	} {
		up, err := newUpstream(UpstreamConfig{Name: "u", URL: tc.upstream}, baseTransport(0), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		from, _ := url.Parse(tc.from)
		to, _ := url.Parse(tc.to)
		err = up.redirectAllowed(from, to)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s → %s: refused (%v); want followed", tc.from, tc.to, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s → %s: %v; want refused with %q", tc.from, tc.to, err, tc.refused)
		}
	}
}

func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://Registry.Example/v2/":  "https://registry.example:443",
		"https://registry.example:443/": "https://registry.example:443",
		"http://127.0.0.1:5000/v2/":     "http://127.0.0.1:5000",
		"http://[::1]/":                 "http://[::1]:80",
	} {
		u, _ := url.Parse(in)
		if got := originOf(u); got != want {
			t.Errorf("originOf(%s) = %s; want %s", in, got, want)
		}
	}
}
