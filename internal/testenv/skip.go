package testenv

import (
	"os"
	"testing"
)

// SkipOrFail skips a test whose outside tool is missing, except in CI
// (CI=true), where a missing tool is a failure: CI must never go green by
// skipping.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required in CI: %s", why)
	}
	t.Skip(why)
}
