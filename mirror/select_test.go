package mirror

import (
	"testing"

	"github.com/trustproxy/trustproxy/policy"
)

func TestRepositoryOf(t *testing.T) {
	for _, c := range []struct {
		match, trustName, target string
		up, repo, tag            string
		ok                       bool
	}{
		{"docker.io/acme/**", "", "docker.io/acme/app:1.0", "docker.io", "acme/app", "1.0", true},
		{"docker.io/acme/**", "", "docker.io/acme/app", "", "", "", false},  // no tag
		{"docker.io/acme/**", "", "in-toto/root.layout", "", "", "", false}, // not an image target
		{"localhost:5000/**", "", "localhost:5000/app", "", "", "", false},  // the colon is a port
		{"localhost:5000/**", "", "localhost:5000/app:v1", "localhost:5000", "app", "v1", true},
		{"docker.io/acme/**", "registry.corp.example/{repo}", "registry.corp.example/acme/app:1.0", "docker.io", "acme/app", "1.0", true},
		{"*/acme/**", "registry.corp.example/{repo}", "registry.corp.example/acme/app:1.0", "", "", "", false}, // upstream unknown
		{"*/acme/**", "mirror/{upstream}/{repo}", "mirror/quay.io/acme/app:2", "quay.io", "acme/app", "2", true},
		{"docker.io/acme/**", "registry.corp.example/{repo}", "elsewhere/acme/app:1.0", "", "", "", false},
	} {
		up, repo, tag, ok := repositoryOf(policy.Rule{Match: c.match, TrustName: c.trustName}, c.target)
		if ok != c.ok || (ok && (up != c.up || repo != c.repo || tag != c.tag)) {
			t.Errorf("repositoryOf(%q, %q) = %q %q %q %v, want %q %q %q %v", c.trustName, c.target, up, repo, tag, ok, c.up, c.repo, c.tag, c.ok)
		}
	}
}
