package trustfetch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A restart takes the verified roles from the state directory's compact
// copies, but only those the snapshot verified now still names.
func TestRestartUsesVerifiedRoles(t *testing.T) {
	r := largeRepo(t, 2000, 4)
	srv := newTrustServer(t, r.dir)
	state := t.TempDir()
	withState := func(c *Config, _ *Options) { c.StateDir = state }
	first := mustIndex(t, r.open(srv.metadataURL(), withState))
	if first.Len() != 2000 {
		t.Fatalf("Len() = %d", first.Len())
	}
	binHits := func() int {
		return srv.hitsOf(func(p string) bool { return strings.Contains(p, ".bins-") })
	}
	// Without the stored JSON of the roles, a restart that had to verify
	// them again would download them.
	dropStoredRoles := func() {
		entries, err := os.ReadDir(filepath.Join(state, stateMetadataDir))
		must(t, err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "bins-") {
				must(t, os.Remove(filepath.Join(state, stateMetadataDir, e.Name())))
			}
		}
	}

	t.Run("unchanged snapshot", func(t *testing.T) {
		dropStoredRoles()
		before := binHits()
		ix := mustIndex(t, r.open(srv.metadataURL(), withState))
		if got := binHits() - before; got != 0 {
			t.Fatalf("%d bins downloaded after a restart with nothing changed", got)
		}
		if ix.Len() != first.Len() {
			t.Fatalf("Len() = %d, want %d", ix.Len(), first.Len())
		}
		name := "docker.io/acme/app-001234:1.0"
		if a, _ := ix.Lookup(name); a.SHA256 != mustLookup(t, first, name).SHA256 || a.MediaType() != manifestType {
			t.Fatalf("Lookup(%s) = %+v", name, a)
		}
	})

	t.Run("changed bin", func(t *testing.T) {
		name := "docker.io/acme/app-000007:1.0"
		bin := r.binFor(metadata.TARGETS, name)
		r.roles[bin].Signed.Targets[name].Length = 424242
		r.dirty[bin] = true
		r.publish()
		dropStoredRoles()
		before := binHits()
		ix := mustIndex(t, r.open(srv.metadataURL(), withState))
		if got := binHits() - before; got != 1 {
			t.Fatalf("%d bins downloaded, want only the changed one", got)
		}
		if tg := mustLookup(t, ix, name); tg.Length != 424242 {
			t.Fatalf("the changed bin's old content is in force: %+v", tg)
		}
	})

	t.Run("corrupted copy", func(t *testing.T) {
		entries, err := os.ReadDir(filepath.Join(state, verifiedDir))
		must(t, err)
		for _, e := range entries {
			p := filepath.Join(state, verifiedDir, e.Name())
			b, err := os.ReadFile(p)
			must(t, err)
			b[len(b)/2] ^= 0x40
			must(t, os.WriteFile(p, b, 0o644))
		}
		dropStoredRoles()
		before := binHits()
		ix := mustIndex(t, r.open(srv.metadataURL(), withState))
		if got := binHits() - before; got != 16 {
			t.Fatalf("%d bins downloaded, want all 16 (every copy is corrupt)", got)
		}
		if ix.Len() != 2000 {
			t.Fatalf("Len() = %d", ix.Len())
		}
	})
}

func mustLookup(t *testing.T, ix *Index, name string) Target {
	t.Helper()
	tg, ok := ix.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%s): not found", name)
	}
	return tg
}

func TestVerifiedRoleRoundTrip(t *testing.T) {
	sb := newSegmentBuilder("bins-3", 3)
	sb.add([]byte("a:1"), 10, make([]byte, 32), []byte(`{"mediaType":"m","in-toto":["x"]}`))
	sb.add([]byte("b:1"), 11, nil, nil)
	for i := range 300 {
		sb.add([]byte(fmt.Sprintf("c:%d", i)), int64(i), make([]byte, 32), []byte(`{"layout":{}}`))
	}
	seg := sb.done()
	seg.deleg = &metadata.Delegations{Keys: map[string]*metadata.Key{}, Roles: []metadata.DelegatedRole{{Name: "x", KeyIDs: []string{"k"}, Threshold: 1, Paths: []string{"a*"}}}}
	seg.delegHash[3] = 7
	vr := verifiedRole{entry: snapshotEntry{version: 3, length: 99, hashes: "sha256:ab;"}, parent: "targets", delegator: "root v1", seg: seg}
	b, err := encodeVerified(vr)
	must(t, err)
	got, err := decodeVerified(b)
	must(t, err)
	if got.entry != vr.entry || got.parent != vr.parent || got.delegator != vr.delegator || got.seg.names != seg.names ||
		len(got.seg.ents) != len(seg.ents) || got.seg.delegHash != seg.delegHash || got.seg.deleg.Roles[0].Paths[0] != "a*" {
		t.Fatalf("round trip: %+v", got)
	}
	if i, ok := got.seg.find("c:150"); !ok || got.seg.target(i).Length != 150 || !got.seg.target(i).HasLayout() {
		t.Fatalf("find after round trip: %d %v", i, ok)
	}
	if i, ok := got.seg.find("a:1"); !ok || got.seg.target(i).MediaType() != "m" || got.seg.target(i).InToto()[0] != "x" {
		t.Fatal("custom lost in the round trip")
	}
	for _, cut := range []int{0, 10, len(b) / 2, len(b) - 1} {
		if _, err := decodeVerified(b[:cut]); err == nil {
			t.Fatalf("a copy cut at %d bytes decoded", cut)
		}
	}
}
