package policy

import (
	"strings"
	"testing"
)

func TestAttachments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a       Attachments
		allowed map[string]bool
		err     string
	}{
		{"default serves all", Attachments{}, map[string]bool{"a/b": true, "": true}, ""},
		{"disabled serves none", Attachments{Disabled: true}, map[string]bool{"a/b": false}, ""},
		{"listed types only", Attachments{ArtifactTypes: []string{"a/b"}}, map[string]bool{"a/b": true, "a/c": false}, ""},
		{"both", Attachments{Disabled: true, ArtifactTypes: []string{"a/b"}}, nil, "exclude each other"},
		{"empty type", Attachments{ArtifactTypes: []string{""}}, nil, "empty artifact type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Rules: []Rule{{Name: "r", Match: "up/**", Mode: ModeAllow, Attachments: tc.a}}}
			err := cfg.validate(nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), "policy.rules[0].attachments (r): ") || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("validate: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for typ, want := range tc.allowed {
				if got := tc.a.Allows(typ); got != want {
					t.Errorf("Allows(%q) = %v, want %v", typ, got, want)
				}
			}
		})
	}
}
