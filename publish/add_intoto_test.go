package publish

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trust add publishes in-toto metadata compactly: an indented layout over
// the proxy's default 1 MiB per-file limit is published well under it.
func TestInTotoFilesPublishedCompact(t *testing.T) {
	dir := t.TempDir()
	steps := make([]map[string]any, 5000)
	for i := range steps {
		steps[i] = map[string]any{"_type": "step", "name": strings.Repeat("s", 20), "expected_materials": [][]string{{"ALLOW", "*"}}}
	}
	indented, err := json.MarshalIndent(map[string]any{"signatures": []any{}, "signed": map[string]any{"_type": "layout", "steps": steps}}, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	if len(indented) <= 1<<20 {
		t.Fatalf("test layout is only %d bytes", len(indented))
	}
	os.WriteFile(filepath.Join(dir, "root.layout"), indented, 0o644)
	os.Mkdir(filepath.Join(dir, "links"), 0o755)
	os.WriteFile(filepath.Join(dir, "links", "a.12345678.link"), []byte("{\n  \"signed\": {}\n}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "links", "b.12345678.link"), []byte("not json"), 0o644)

	p := &AddPlan{custom: map[string]any{}, Desc: Descriptor{Digest: "sha256:" + strings.Repeat("a", 64)}}
	err = InTotoFiles{Layout: filepath.Join(dir, "root.layout"), Links: filepath.Join(dir, "links")}.plan(p, "example.com/app")
	if err == nil || !strings.Contains(err.Error(), "b.12345678.link is not JSON in-toto metadata") {
		t.Fatalf("plan with a broken link: %v", err)
	}
	os.Remove(filepath.Join(dir, "links", "b.12345678.link"))
	p = &AddPlan{custom: map[string]any{}, Desc: Descriptor{Digest: "sha256:" + strings.Repeat("a", 64)}}
	if err := (InTotoFiles{Layout: filepath.Join(dir, "root.layout"), Links: filepath.Join(dir, "links")}).plan(p, "example.com/app"); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	json.Compact(&want, indented)
	if got := p.extra[0].data; !bytes.Equal(got, want.Bytes()) || len(got) > 1<<20 {
		t.Fatalf("layout published as %d bytes, want the %d-byte compact form", len(got), want.Len())
	}
	if got := string(p.extra[1].data); got != `{"signed":{}}` {
		t.Fatalf("link published as %q", got)
	}
}
