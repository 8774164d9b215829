package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func exportedRefs(t *testing.T, exp string) []string {
	t.Helper()
	var refs []string
	for _, e := range readMirrorIndex(t, exp)["entries"].([]any) {
		refs = append(refs, e.(map[string]any)["reference"].(string))
	}
	slices.Sort(refs)
	return refs
}

// TestMirrorExportByPattern: patterns and rules select from the verified
// trust index: every signed tag of a repository the pattern (or rule)
// covers, nothing outside it, nothing no enforce rule governs.
func TestMirrorExportByPattern(t *testing.T) {
	m := newMirrorSides(t)
	for _, rt := range []string{"acme/app:1.0", "acme/app:2.0", "acme/db:1.0", "acme/tools/x:1.0", "other/zzz:1.0"} {
		m.up.PushRandomImage(t, rt, 256, 1, types.OCIManifestSchema1)
		m.sign(t, rt) // other/zzz is signed, but no rule of the online side governs up/other
	}
	m.up.PushRandomImage(t, "acme/app:unsigned", 256, 1, types.OCIManifestSchema1)
	for i, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--all", "up/acme/app"}, []string{"up/acme/app:1.0", "up/acme/app:2.0"}},
		{[]string{"up/acme/*"}, []string{"up/acme/app:1.0", "up/acme/app:2.0", "up/acme/db:1.0"}},
		{[]string{"up/**"}, []string{"up/acme/app:1.0", "up/acme/app:2.0", "up/acme/db:1.0", "up/acme/tools/x:1.0"}},
		{[]string{"--rule", "acme", "up/acme/db:1.0"}, []string{"up/acme/app:1.0", "up/acme/app:2.0", "up/acme/db:1.0", "up/acme/tools/x:1.0"}},
	} {
		exp := filepath.Join(m.dir, fmt.Sprint("sel", i))
		export(t, m, exp, c.args...)
		if got := exportedRefs(t, exp); !slices.Equal(got, c.want) {
			t.Errorf("export %v = %v, want %v", c.args, got, c.want)
		}
		if i == 2 { // the widest selection crosses and is served offline
			cfg, _ := m.offline(t)
			if out, err := runMirrorArgs(t, "import", "--config", cfg, exp); err != nil || !strings.Contains(out, "imported 4 references") {
				t.Fatalf("import: %v\n%s", err, out)
			}
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"up/other/**"}, `pattern "up/other/**": no enforce rule's trust data vouches for a tag under it`},
		{[]string{"--rule", "nope"}, `--rule "nope": no such policy rule`},
		{[]string{"--all", "up/**/x"}, "** is only allowed as the last segment"},
	} {
		args := append([]string{"export", "--config", m.online, "--out", filepath.Join(m.dir, "bad")}, c.args...)
		if out, err := runMirrorArgs(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("export %v: %v, want %q\n%s", c.args, err, c.want, out)
		}
	}
}
