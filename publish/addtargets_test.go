package publish_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trustproxy/trustproxy/publish"
)

// AddTargets stages a batch in one edit; a refused entry stages nothing.
func TestAddTargets(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	var batch []publish.NewTarget
	for i := range 500 {
		body := fmt.Sprintf("manifest %d", i)
		batch = append(batch, publish.NewTarget{Name: fmt.Sprintf("example.com/app:%d", i), Length: int64(len(body)),
			SHA256: sha([]byte(body)), Custom: map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json"}})
	}
	added, err := r.AddTargets("", batch)
	if err != nil || len(added) != len(batch) {
		t.Fatalf("add %d: %d added, %v", len(batch), len(added), err)
	}
	bad := []publish.NewTarget{{Name: "example.com/app:new", Length: 1, SHA256: sha([]byte("x"))}, {Name: "example.com/app:bad", Length: 1, SHA256: "nothex"}}
	if _, err := r.AddTargets("", bad); err == nil || !strings.Contains(err.Error(), "64 lowercase hex") {
		t.Fatalf("bad batch: %v", err)
	}
	if _, ok := r.Lookup("example.com/app:new"); ok {
		t.Fatal("a refused batch left an entry in memory")
	}
	mustPublish(t, r)
	reopened, err := publish.Open(repoDir, "", publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reopened.Targets()); n != len(batch) {
		t.Fatalf("%d targets published, want %d", n, len(batch))
	}
	if _, ok := reopened.Lookup("example.com/app:new"); ok {
		t.Fatal("a refused batch staged an entry")
	}
	c := newHTTPClient(t, repoDir)
	if _, _, err := c.get("example.com/app:499", false); err != nil {
		t.Fatalf("go-tuf client: %v", err)
	}
}
