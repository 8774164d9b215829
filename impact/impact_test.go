package impact

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestReadAuditLog(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","logger":"trust","msg":"trust data updated"}`,
		`{"level":"info","logger":"audit","caller":"policy/engine.go:1","msg":"decision","reference":"up/a:1","verdict":"allow"}`,
		`not json at all`,
		`{"level":"info","msg":"request","reference":"up/ignored:1"}`,
		`{"level":"info","logger":"audit","msg":"decision","reference":"up/b@sha256:ab","verdict":"deny"}`,
		`{"level":"info","logger":"audit","msg":"decision","reference":"up/a:1","verdict":"audit-fail"}`,
		`{"logger":"audit","msg":"decision","reference":"up/long:1","pad":"` + strings.Repeat("x", maxLine) + `"}`,
		`{"logger":"audit","msg":"decision","reference":"up/a:1","verdict":"allow"}`,
		`{"logger":"audit","msg":"decision","reference":"up/c:2"`, // truncated by a crash: no newline, not JSON
	}, "\n")
	got, err := ReadAuditLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []Seen{
		{Reference: "up/a:1", Count: 3, Verdicts: []string{"allow", "audit-fail"}},
		{Reference: "up/b@sha256:ab", Count: 1, Verdicts: []string{"deny"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReadList(t *testing.T) {
	got, err := ReadList(strings.NewReader("# comment\nup/a:1\n\n  up/b:2  \nup/a:1\n"))
	if err != nil || len(got) != 2 || got[0].Reference != "up/a:1" || got[1].Reference != "up/b:2" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ReadList(strings.NewReader("up/a:1 up/b:2\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("two references on a line: %v", err)
	}
}

func TestCompare(t *testing.T) {
	cur := map[string]Outcome{
		"same":     {Verdict: Allow, Rule: "r", Mode: "enforce", Digest: "d1"},
		"denied":   {Verdict: AllowException, Rule: "x", Mode: "allow", Digest: "d1"},
		"allowed":  {Verdict: Deny, Reason: "no policy rule allows it"},
		"digest":   {Verdict: Allow, Rule: "r", Mode: "enforce", Digest: "d1"},
		"unreach":  {Verdict: Allow, Rule: "r", Mode: "enforce", Digest: "d1"},
		"stillbad": {Verdict: Deny, Rule: "r", Mode: "enforce", Reason: "no target"},
	}
	prop := map[string]Outcome{
		"same":     cur["same"],
		"denied":   {Verdict: Deny, Rule: "y", Mode: "enforce", Reason: "no target"},
		"allowed":  {Verdict: AuditFail, Rule: "z", Mode: "audit", Reason: "would be denied"},
		"digest":   {Verdict: Allow, Rule: "r", Mode: "enforce", Digest: "d2"},
		"unreach":  {Verdict: Error, Rule: "r", Mode: "enforce", Reason: "404 NAME_UNKNOWN"},
		"stillbad": {Verdict: Deny, Rule: "r", Mode: "enforce", Reason: "in-toto: missing link"},
	}
	judge := func(m map[string]Outcome) Judge {
		return func(_ context.Context, ref string) (Outcome, error) {
			o, ok := m[ref]
			if !ok {
				return o, fmt.Errorf("unknown %s", ref)
			}
			return o, nil
		}
	}
	var refs []Seen
	for _, r := range []string{"same", "denied", "allowed", "digest", "unreach", "stillbad"} {
		refs = append(refs, Seen{Reference: r, Count: 1})
	}
	rep, err := Compare(context.Background(), refs, judge(cur), judge(prop))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	whys := map[string]string{}
	for _, c := range rep.Changes {
		kinds[c.Reference], whys[c.Reference] = c.Kind, c.Why
	}
	wantKinds := map[string]string{"same": "unchanged", "denied": "newly-denied", "allowed": "newly-allowed",
		"digest": "changed", "unreach": "newly-denied", "stillbad": "changed"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("kinds %v, want %v", kinds, wantKinds)
	}
	for ref, want := range map[string]string{
		"denied":   `rule "x" (allow) → "y" (enforce); now: no target`,
		"allowed":  `rule (none: default deny) → "z" (audit); now: would be denied`,
		"digest":   "digest d1 → d2",
		"stillbad": "now: in-toto: missing link",
	} {
		if whys[ref] != want {
			t.Errorf("%s: why %q, want %q", ref, whys[ref], want)
		}
	}
	if want := (Summary{References: 6, Unchanged: 1, NewlyDenied: 2, NewlyAllowed: 1, Changed: 2}); rep.Summary != want {
		t.Errorf("summary %+v, want %+v", rep.Summary, want)
	}
	if _, err := Compare(context.Background(), []Seen{{Reference: "nope"}}, judge(cur), judge(prop)); err == nil ||
		!strings.Contains(err.Error(), "nope under the current policy") {
		t.Errorf("judge failure: %v", err)
	}
}
