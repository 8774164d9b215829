package cnab

import (
	"strings"
	"testing"
)

func TestCheckStrictJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"object", `{"a":1,"b":[{"a":1},{"a":2}],"c":{"a":{"b":null}}}`, ""},
		{"empty object", `{}`, ""},
		{"whitespace", " {\"a\" : [ 1 , 2 ] }\n", ""},
		{"duplicate", `{"a":1,"a":2}`, `duplicate key "a"`},
		{"nested duplicate", `{"x":[{"k":1,"k":1}]}`, `duplicate key "k"`},
		{"duplicate after nested object", `{"a":{"b":1},"a":2}`, `duplicate key "a"`},
		{"case-folded duplicate", `{"contentDigest":"x","ContentDigest":"y"}`, `duplicate key "ContentDigest"`},
		{"Kelvin sign folds to k", `{"k":1,"` + "\u212a" + `":2}`, "duplicate key"},
		{"long s folds to s", `{"size":1,"` + "\u017fize" + `":2}`, "duplicate key"},
		{"array", `[1]`, "not a JSON object"},
		{"string", `"a"`, "not a JSON object"},
		{"empty", ``, "empty document"},
		{"trailing data", `{}{}`, "data after the top-level JSON object"},
		{"truncated", `{"a":[1`, "unexpected end"},
		{"syntax error", `{"a":}`, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkStrictJSON([]byte(tc.in))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("checkStrictJSON(%s) = %v", tc.in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkStrictJSON(%s) = %v, want %q", tc.in, err, tc.want)
			}
		})
	}
}
