package policy

import (
	"strings"
	"testing"
)

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, repo string
		want          bool
	}{
		{"docker.io/library/*", "docker.io/library/alpine", true},
		{"docker.io/library/*", "docker.io/library/a/b", false},
		{"docker.io/library/*", "docker.io/acme/app", false},
		{"docker.io/**", "docker.io/acme/team/app", true},
		{"docker.io/**", "docker.io", false},
		{"**", "ghcr.io/x", true},
		{"ghcr.io/acme/app", "ghcr.io/acme/app", true},
		{"ghcr.io/acme/app", "ghcr.io/acme/app2", false},
		{"*/acme/*", "ghcr.io/acme/app", true},
	} {
		if got := matches(tc.pattern, tc.repo); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.pattern, tc.repo, got, tc.want)
		}
	}
}

// The most specific rule wins whatever the file order; equally specific
// rules keep file order.
func TestRuleSelection(t *testing.T) {
	e, err := New(Config{Rules: []Rule{
		{Name: "everything", Match: "**", Mode: ModeAllow},
		{Name: "hub", Match: "docker.io/**", Mode: ModeAllow},
		{Name: "library", Match: "docker.io/library/*", Mode: ModeAllow},
		{Name: "alpine", Match: "docker.io/library/alpine", Mode: ModeAllow},
		{Name: "first-star", Match: "ghcr.io/*/app", Mode: ModeAllow},
		{Name: "second-star", Match: "ghcr.io/*/app", Mode: ModeAllow},
	}}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]string{
		"docker.io/library/alpine": "alpine",
		"docker.io/library/nginx":  "library",
		"docker.io/acme/app":       "hub",
		"quay.io/x/y":              "everything",
		"ghcr.io/acme/app":         "first-star",
	} {
		up, rest, _ := strings.Cut(repo, "/")
		if r := e.Rule(up, rest); r == nil || r.Name != want {
			t.Errorf("%s: rule %v, want %s", repo, r, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default allow", Config{Default: "allow"}, "policy.default"},
		{"bad mode", Config{Rules: []Rule{{Match: "**", Mode: "maybe"}}}, "policy.rules[0].mode"},
		{"enforce without trust", Config{Rules: []Rule{{Match: "**", Mode: ModeEnforce}}}, "needs a trust repository"},
		{"unknown trust", Config{Rules: []Rule{{Match: "**", Mode: ModeEnforce, Trust: "nope"}}}, `no trust repository named "nope"`},
		{"bad require", Config{Rules: []Rule{{Match: "**", Mode: ModeAudit, Trust: "t", Require: []string{"gpg"}}}}, "require"},
		{"bad pattern", Config{Rules: []Rule{{Match: "a/**/b", Mode: ModeAllow}}}, "only allowed as the last segment"},
		{"duplicate name", Config{Rules: []Rule{{Name: "x", Match: "a", Mode: ModeAllow}, {Name: "x", Match: "b", Mode: ModeAllow}}}, "duplicate rule name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, map[string]TrustSource{"t": nil}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNoRuleDenies(t *testing.T) {
	e, err := New(Config{}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.ResolveTag(t.Context(), Subject{Upstream: "docker.io", Repository: "library/alpine", Tag: "3.20"})
	if d.Allowed || !strings.Contains(d.Message(Subject{Upstream: "docker.io", Repository: "library/alpine", Tag: "3.20"}), "no policy rule allows docker.io/library/alpine") {
		t.Fatalf("decision %+v", d)
	}
}
