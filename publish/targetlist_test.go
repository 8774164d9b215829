package publish_test

import (
	"strings"
	"testing"

	"github.com/trustproxy/trustproxy/publish"
)

func TestReadTargetList(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, in, err string
		want          []publish.NewTarget
	}{
		{"digest and media type", `{"name":"r.io/a:1","digest":"sha256:` + h + `","length":5,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`, "",
			[]publish.NewTarget{{Name: "r.io/a:1", SHA256: h, Length: 5, Custom: map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json"}}}},
		{"sha256, custom, comments and blank lines", "# signed nightly\n\n" + `{"name":"r.io/b:2","sha256":"` + h + `","length":7,"custom":{"owner":"x"}}` + "\n", "",
			[]publish.NewTarget{{Name: "r.io/b:2", SHA256: h, Length: 7, Custom: map[string]any{"owner": "x"}}}},
		{"unknown field", `{"name":"a:1","sha256":"` + h + `","size":3}`, `line 1: json: unknown field "size"`, nil},
		{"no digest", "\n" + `{"name":"a:1","length":3}`, "line 2: a:1: no digest", nil},
		{"other algorithm", `{"name":"a:1","digest":"sha512:00"}`, `digest "sha512:00"`, nil},
		{"digests disagree", `{"name":"a:1","digest":"sha256:` + h + `","sha256":"00"}`, "matching sha256", nil},
		{"no name", `{"sha256":"` + h + `"}`, "line 1: no name", nil},
		{"media type twice", `{"name":"a:1","sha256":"` + h + `","mediaType":"x","custom":{"mediaType":"y"}}`, "mediaType given twice", nil},
		{"not JSON", `a:1 ` + h, "line 1:", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := publish.ReadTargetList(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("%v, %v", got, err)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.Name != w.Name || g.SHA256 != w.SHA256 || g.Length != w.Length || len(g.Custom) != len(w.Custom) {
					t.Fatalf("got %+v, want %+v", g, w)
				}
				for k, v := range w.Custom {
					if g.Custom[k] != v {
						t.Fatalf("custom %s = %v, want %v", k, g.Custom[k], v)
					}
				}
			}
		})
	}
}
