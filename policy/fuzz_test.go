package policy

import (
	"strings"
	"testing"
)

// FuzzPattern: any pattern a configuration holds and any repository a
// client names are checked without panicking, and a valid literal pattern
// matches exactly itself.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"docker.io/**", "docker.io/library/alpine"}, {"ghcr.io/acme/*", "ghcr.io/acme/app"},
		{"**", "x"}, {"a/[b-", "a/b"}, {"a/**/b", "a/x/b"}, {"", ""}, {"a/?", "a/b"}, {"a\\", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, repo string) {
		if validPattern(pattern) != nil {
			return
		}
		_ = matches(pattern, repo)
		_ = specificity(pattern)
		if !strings.ContainsAny(pattern, `*?[\`) && !matches(pattern, pattern) {
			t.Fatalf("literal pattern %q does not match itself", pattern)
		}
	})
}
