package policy

import (
	"strings"
	"testing"
)

func TestMismatchAgreesWithMatches(t *testing.T) {
	for _, tc := range []struct{ p, repo, why string }{
		{"up/acme/**", "up/acme/app", ""},
		{"up/acme/**", "up/acme", `needs at least one path segment after "up/acme"`},
		{"up/*/app", "up/acme/app", ""},
		{"up/*/app", "up/acme/tool", `segment 3: "tool" does not match "app"`},
		{"up/acme", "up/acme/app", `pattern "up/acme" has 2 path segments, "up/acme/app" has 3`},
		{"up/acme/app/x", "up/acme/app", `has 4 path segments`},
		{"other/**", "up/acme/app", `segment 1: "up" does not match "other"`},
	} {
		why := mismatch(tc.p, tc.repo)
		if (why == "") != matches(tc.p, tc.repo) {
			t.Errorf("%s vs %s: mismatch %q disagrees with matches", tc.p, tc.repo, why)
		}
		if (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%s vs %s: %q, want %q", tc.p, tc.repo, why, tc.why)
		}
	}
}

func TestExplainOrderAndShadowing(t *testing.T) {
	e, err := New(Config{Rules: []Rule{
		{Name: "all", Match: "up/**", Mode: ModeAllow},
		{Name: "acme", Match: "up/acme/**", Mode: ModeAllow},
		{Name: "other", Match: "up/other/**", Mode: ModeAllow},
	}}, nil, Options{Version: "v7"})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Explain("up", "acme/app")
	var names []string
	for _, c := range got {
		names = append(names, c.Rule)
	}
	if strings.Join(names, ",") != "other,acme,all" || got[0].Matched || !got[1].Matched || got[2].Matched {
		t.Fatalf("%+v", got)
	}
	if !strings.Contains(got[2].Why, `rule "acme" (up/acme/**) is more specific`) || !strings.Contains(got[0].Why, `"acme" does not match "other"`) {
		t.Errorf("%+v", got)
	}
	if e.Version() != "v7" {
		t.Errorf("version %q", e.Version())
	}
}
