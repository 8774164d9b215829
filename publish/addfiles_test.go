package publish_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/publish"
)

// linkFiles is an in-toto supply chain's worth of target files: a layout
// and n links of about 1 KiB each, named as trust add names them.
func linkFiles(n int, salt string) []publish.NewTargetFile {
	files := []publish.NewTargetFile{{Name: "example.com/app/in-toto-metadata/root.layout", Data: []byte(`{"signed":{"_type":"layout"}}` + salt)}}
	for i := range n {
		body := fmt.Sprintf(`{"signed":{"_type":"link","name":"step%d","salt":%q,"pad":%q}}`, i, salt, strings.Repeat("x", 1000))
		files = append(files, publish.NewTargetFile{
			Name: fmt.Sprintf("example.com/app/in-toto-metadata/%064x/step%d-%s.0123abcd.link", 1, i, salt), Data: []byte(body)})
	}
	return files
}

// AddTargetFiles stages everything in one edit, and on a refusal or a
// cancelled context leaves the repository exactly as it was.
func TestAddTargetFiles(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	files := linkFiles(300, "a")
	added, err := r.AddTargetFiles(context.Background(), files)
	if err != nil || len(added) != len(files) {
		t.Fatalf("add: %d added, %v", len(added), err)
	}
	mustPublish(t, r)
	c := newHTTPClient(t, repoDir)
	if _, body, err := c.get(files[299].Name, true); err != nil || string(body) != string(files[299].Data) {
		t.Fatalf("go-tuf client download of a link: %v", err)
	}

	before := testenv.Tree(t, repoDir)
	bad := append(linkFiles(50, "b"), publish.NewTargetFile{Role: "no-such-role", Name: "example.com/app:x", Data: []byte("x")})
	if _, err := r.AddTargetFiles(context.Background(), bad); err == nil || !strings.Contains(err.Error(), `no role "no-such-role"`) {
		t.Fatalf("refused batch: %v", err)
	}
	if d := testenv.TreeDiff(before, testenv.Tree(t, repoDir)); len(d) > 0 {
		t.Fatalf("a refused batch changed the repository: %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.AddTargetFiles(ctx, linkFiles(50, "c")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled batch: %v", err)
	}
	if d := testenv.TreeDiff(before, testenv.Tree(t, repoDir)); len(d) > 0 {
		t.Fatalf("a cancelled batch changed the repository: %v", d)
	}
}

// A publisher waiting for another one's lock stops when its context ends
// (SIGINT/SIGTERM in the CLI), having changed nothing.
func TestAddTargetFilesStopsWhileWaitingForTheLock(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	lock := flock.New(filepath.Join(repoDir, "staging", "lock"))
	if err := lock.Lock(); err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	before := testenv.Tree(t, repoDir)
	for name, op := range map[string]func(context.Context) error{
		"add":       func(ctx context.Context) error { _, err := r.AddTargetFiles(ctx, linkFiles(20, "d")); return err },
		"publish":   func(ctx context.Context) error { _, err := r.Publish(ctx); return err },
		"timestamp": func(ctx context.Context) error { _, err := r.Timestamp(ctx); return err },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := op(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another publisher holds it") {
			t.Fatalf("%s while locked: %v", name, err)
		}
		if d := testenv.TreeDiff(before, testenv.Tree(t, repoDir)); len(d) > 0 {
			t.Fatalf("a stopped %s changed the repository: %v", name, d)
		}
	}
}

// BenchmarkAddInTotoLinks stages a trust add's worth of in-toto links into a
// repository that already holds 1,000 targets: in one edit (AddTargetFiles)
// and, for comparison, one edit per file (AddTargetFile), which is what
// trust add did. Run with -benchtime=1x.
func BenchmarkAddInTotoLinks(b *testing.B) {
	for _, n := range []int{100, 400, 1600, 5000} {
		for _, mode := range []string{"batch", "per-file"} {
			if mode == "per-file" && n > 400 {
				continue // quadratic: 1,600 took minutes
			}
			b.Run(fmt.Sprintf("%s/links=%d", mode, n), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					dir := b.TempDir()
					r, err := publish.Init(context.Background(), filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), publish.InitOptions{})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := r.AddTargetFiles(context.Background(), linkFiles(1000, "existing")); err != nil {
						b.Fatal(err)
					}
					files := linkFiles(n, "new")
					b.StartTimer()
					if mode == "batch" {
						if _, err := r.AddTargetFiles(context.Background(), files); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for _, f := range files {
						if _, err := r.AddTargetFile("", f.Name, strings.NewReader(string(f.Data)), nil); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
