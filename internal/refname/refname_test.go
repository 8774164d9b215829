package refname

import (
	"strings"
	"testing"
)

func TestRepository(t *testing.T) {
	for _, tc := range []struct {
		host, repo, want string
	}{
		{"docker.io", "alpine", "library/alpine"},
		{"index.docker.io", "alpine", "library/alpine"},
		{"registry-1.docker.io", "alpine", "library/alpine"},
		{"docker.io", "library/alpine", "library/alpine"},
		{"docker.io", "acme/app", "acme/app"},
		{"ghcr.io", "alpine", "alpine"},
		{"ghcr.io", "acme/team/app", "acme/team/app"},
		{"127.0.0.1:5000", "a.b/c__d/e-f", "a.b/c__d/e-f"},
		{"ghcr.io", "Acme/app", ""},
		{"ghcr.io", "acme//app", ""},
		{"ghcr.io", "acme/app:1", ""},
		{"ghcr.io", "acme/app@sha256:" + strings.Repeat("a", 64), ""},
		{"ghcr.io", "-acme", ""},
		{"ghcr.io", "", ""},
		{"ghcr.io", strings.Repeat("a", 300), ""},
	} {
		got, err := Repository(tc.host, tc.repo)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("Repository(%q, %q) = %q, %v; want %q", tc.host, tc.repo, got, err, tc.want)
		}
	}
}

func TestIsTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"1.0": true, "latest": true, "v1.2.3-rc_1": true, "_x": true, strings.Repeat("a", 128): true,
		"": false, ".x": false, "-x": false, "a/b": false, "a:b": false, strings.Repeat("a", 129): false,
		"sha256:" + strings.Repeat("a", 64): false,
	} {
		if IsTag(tag) != want {
			t.Errorf("IsTag(%q) = %v", tag, !want)
		}
	}
}
