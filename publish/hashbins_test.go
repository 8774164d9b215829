package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/trustproxy/trustproxy/publish"
)

// specBin is the TUF specification's succinct_roles rule written out on its
// own: the first bit_length bits of the sha256 of the target path, as a
// zero-padded lowercase hex suffix.
func specBin(name string, bitLength int) string {
	h := sha256.Sum256([]byte(name))
	n := binary.BigEndian.Uint32(h[:4]) >> (32 - bitLength)
	width := len(fmt.Sprintf("%x", (1<<bitLength)-1))
	return fmt.Sprintf("%s-%0*x", publish.BinPrefix, width, n)
}

func binTargets(prefix string, n int) []publish.NewTarget {
	ts := make([]publish.NewTarget, n)
	for i := range ts {
		body := fmt.Sprintf("%s manifest %d", prefix, i)
		ts[i] = publish.NewTarget{Name: fmt.Sprintf("example.com/%s/app%d:v%d", prefix, i%7, i), Length: int64(len(body)),
			SHA256: sha([]byte(body)), Custom: map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json"}}
	}
	return ts
}

// Each target lands in the bin the specification's hash rule (and go-tuf's
// own SuccinctRoles) selects, and go-tuf's updater finds targets in
// different bins of the published repository.
func TestHashBinsPlaceAndVerify(t *testing.T) {
	for _, tc := range []struct {
		bins, bitLength int
	}{{2, 1}, {16, 4}, {32, 5}, {1024, 10}} {
		t.Run(fmt.Sprint(tc.bins), func(t *testing.T) {
			r, repoDir, keysDir := newRepo(t, publish.InitOptions{HashBins: tc.bins})
			if r.HashBins() != tc.bins {
				t.Fatalf("HashBins() = %d", r.HashBins())
			}
			if _, err := os.Stat(filepath.Join(keysDir, publish.BinPrefix)); err != nil {
				t.Fatalf("bin keys: %v", err)
			}
			// Every bin is published at init, empty: a client looking up a
			// name must find its bin in the snapshot.
			first := specBin("anything", tc.bitLength)
			if _, err := os.Stat(filepath.Join(repoDir, "metadata", "1."+first+".json")); err != nil {
				t.Fatalf("empty bin not published at init: %v", err)
			}
			sr := &metadata.SuccinctRoles{BitLength: tc.bitLength, NamePrefix: publish.BinPrefix}
			added, err := r.AddTargets("", binTargets("place", 200))
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]bool{}
			for _, a := range added {
				want := specBin(a.Name, tc.bitLength)
				if got := sr.GetRolesForTarget(a.Name)[0].Name; got != want {
					t.Fatalf("go-tuf puts %s in %s, the spec rule in %s", a.Name, got, want)
				}
				if a.Role != want || r.BinFor(a.Name) != want {
					t.Fatalf("%s staged in %s (BinFor %s), want %s", a.Name, a.Role, r.BinFor(a.Name), want)
				}
				used[a.Role] = true
			}
			if tc.bins > 2 && len(used) < 2 {
				t.Fatalf("200 targets all in one bin: %v", used)
			}
			res := mustPublish(t, r)
			if len(res.Roles) != 0 || len(res.Bins) != len(used) {
				t.Fatalf("publish signed roles %v and %d bins, want no roles and the %d used bins", res.Roles, len(res.Bins), len(used))
			}
			for _, c := range []*tufClient{newHTTPClient(t, repoDir), newDirClient(t, repoDir)} {
				for _, a := range added[:20] {
					tf, _, err := c.get(a.Name, false)
					if err != nil || hex.EncodeToString(tf.Hashes["sha256"]) != a.SHA256 {
						t.Fatalf("%s client: %s (bin %s): %v", c.transfer, a.Name, a.Role, err)
					}
				}
				if _, _, err := c.get("example.com/place/none:v1", false); err == nil {
					t.Fatalf("%s client found a name never added", c.transfer)
				}
			}
		})
	}
}

// Adding, replacing or removing one target re-signs exactly its bin plus
// snapshot and timestamp; a remove that empties a bin publishes the empty
// bin; a fresh Repo (another CLI invocation) sees the same state.
func TestHashBinsEditResignsOneBin(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{HashBins: 64})
	if _, err := r.AddTargets("", binTargets("base", 300)); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r)
	c := newHTTPClient(t, repoDir)
	if _, _, err := c.get("example.com/base/app0:v0", false); err != nil {
		t.Fatal(err)
	}
	lone := "example.com/lone/app:1"
	bin := r.BinFor(lone)
	for _, tg := range r.Targets() {
		if tg.Role == bin {
			if _, err := r.RemoveTarget("", tg.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustPublish(t, r)

	var last int64
	for _, step := range []struct {
		name  string
		edit  func(r *publish.Repo) error
		found bool
	}{
		{"add to an empty bin", func(r *publish.Repo) error {
			_, err := r.AddTarget("", lone, 3, sha([]byte("one")), nil)
			return err
		}, true},
		{"replace", func(r *publish.Repo) error {
			_, err := r.AddTarget("", lone, 3, sha([]byte("two")), nil)
			return err
		}, true},
		{"remove, emptying the bin", func(r *publish.Repo) error {
			from, err := r.RemoveTarget("", lone)
			if err == nil && (len(from) != 1 || from[0] != bin) {
				err = fmt.Errorf("removed from %v, want %s", from, bin)
			}
			return err
		}, false},
	} {
		fresh, err := publish.Open(repoDir, filepath.Join(filepath.Dir(repoDir), "keys"), publish.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := step.edit(fresh); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		pending, err := fresh.Pending()
		if err != nil || len(pending) != 1 || pending[0] != bin {
			t.Fatalf("%s: pending %v, %v; want [%s]", step.name, pending, err, bin)
		}
		res := mustPublish(t, fresh)
		if len(res.Roles) != 0 || len(res.Bins) != 1 || res.Bins[bin] == 0 {
			t.Fatalf("%s: signed roles %v bins %v, want only %s", step.name, res.Roles, res.Bins, bin)
		}
		last = res.Bins[bin]
		_, _, err = c.get(lone, false)
		if step.found != (err == nil) {
			t.Fatalf("%s: client lookup: %v", step.name, err)
		}
		if _, _, err := c.get("example.com/base/app1:v1", false); err != nil {
			t.Fatalf("%s: other bins: %v", step.name, err)
		}
	}
	md, err := (&metadata.Metadata[metadata.TargetsType]{}).FromFile(filepath.Join(repoDir, "metadata", fmt.Sprintf("%d.%s.json", last, bin)))
	if err != nil || len(md.Signed.Targets) != 0 {
		t.Fatalf("emptied bin v%d: %v, %v", last, md, err)
	}
	if res := mustPublish(t, r); len(res.Bins) != 0 || len(res.Roles) != 0 {
		t.Fatalf("publish with nothing changed signed %v %v", res.Roles, res.Bins)
	}

	// A target with stored bytes (add-file, and trust add's manifests) goes
	// to its bin too, and clients download it.
	file := "example.com/policy/prod.yaml"
	tg, err := r.AddTargetFile("", file, strings.NewReader("rules: []"), nil)
	if err != nil || tg.Role != r.BinFor(file) {
		t.Fatalf("add file: role %q, %v", tg.Role, err)
	}
	if res := mustPublish(t, r); len(res.Bins) != 1 || res.Bins[tg.Role] == 0 {
		t.Fatalf("add file: signed %v", res.Bins)
	}
	if _, data, err := c.get(file, true); err != nil || string(data) != "rules: []" {
		t.Fatalf("download %s: %q, %v", file, data, err)
	}
}

// Hash bins delegated in an existing repository: targets it already lists
// stay in targets, new ones go to bins; other delegations are refused.
func TestDelegateHashBinsLater(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{})
	if _, err := r.AddTarget("", "example.com/old:1", 1, sha([]byte("o")), nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int{0, 3, 1 << 17} {
		if _, err := r.DelegateHashBins(bad); err == nil {
			t.Errorf("%d bins accepted", bad)
		}
	}
	if _, err := r.DelegateHashBins(8); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DelegateHashBins(8); err == nil {
		t.Error("second hash-bin delegation accepted")
	}
	if _, err := r.Delegate("acme", publish.DelegateOptions{Paths: []string{"example.com/*"}}); err == nil {
		t.Error("a path delegation next to hash bins accepted")
	}
	tg, err := r.AddTarget("", "example.com/new:1", 1, sha([]byte("n")), nil)
	if err != nil || !strings.HasPrefix(tg.Role, publish.BinPrefix+"-") {
		t.Fatalf("new target in %q: %v", tg.Role, err)
	}
	res := mustPublish(t, r)
	if res.Roles["targets"] == 0 || len(res.Bins) != 8 {
		t.Fatalf("publish signed %v and %d bins", res.Roles, len(res.Bins))
	}
	c := newHTTPClient(t, repoDir)
	for _, n := range []string{"example.com/old:1", "example.com/new:1"} {
		if _, _, err := c.get(n, false); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// A bulk add stopped before it is staged leaves nothing behind; a refused
// entry stages nothing either.
func TestHashBinsAllOrNothing(t *testing.T) {
	r, repoDir, _ := newRepo(t, publish.InitOptions{HashBins: 16})
	batch := binTargets("aon", 100)
	batch = append(batch, publish.NewTarget{Name: "example.com/bad:1", Length: 1, SHA256: "nothex"})
	if _, err := r.AddTargets("", batch); err == nil {
		t.Fatal("bad batch accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	files := []publish.NewTargetFile{{Name: "example.com/file:1", Data: []byte("x")}}
	if _, err := r.AddTargetFiles(ctx, files); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled add: %v", err)
	}
	fresh, err := publish.Open(repoDir, "", publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.ListTargets(); err != nil || len(got) != 0 {
		t.Fatalf("after refused and cancelled adds: %d targets staged, %v", len(got), err)
	}
	if p, err := fresh.Pending(); err != nil || len(p) != 0 {
		t.Fatalf("pending %v, %v", p, err)
	}
}

// A name staged in the wrong bin, or in a bin while targets lists it, is
// refused with what a client would do instead.
func TestHashBinsRefuseUnreachable(t *testing.T) {
	r, _, _ := newRepo(t, publish.InitOptions{})
	h := sha([]byte("x"))
	if _, err := r.AddTarget("", "example.com/top:1", 1, h, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DelegateHashBins(16); err != nil {
		t.Fatal(err)
	}
	name := "example.com/app:1"
	right := r.BinFor(name)
	wrong := publish.BinPrefix + "-0"
	if wrong == right {
		wrong = publish.BinPrefix + "-1"
	}
	if _, err := r.AddTarget(wrong, name, 1, h, nil); err == nil || !strings.Contains(err.Error(), "not delegated this name") {
		t.Errorf("wrong bin: %v", err)
	}
	if _, err := r.AddTarget("", "example.com/top:1", 1, h, nil); err == nil || !strings.Contains(err.Error(), "find it in role targets first") {
		t.Errorf("name listed by targets: %v", err)
	}
	if _, err := r.AddTarget(right, name, 1, h, nil); err != nil {
		t.Fatal(err)
	}
	if tg, ok := r.Lookup(name); !ok || tg.Role != right {
		t.Fatalf("Lookup: %+v %v", tg, ok)
	}
}
