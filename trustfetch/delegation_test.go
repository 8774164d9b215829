package trustfetch

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// hashPrefix returns the path_hash_prefixes entry (base64url of sha256,
// as go-tuf compares it) that covers name.
func hashPrefix(name string) string {
	sum := sha256.Sum256([]byte(name))
	return base64.URLEncoding.EncodeToString(sum[:])[:2]
}

func TestDelegationSemantics(t *testing.T) {
	const R = "targets/releases"
	tests := []struct {
		name  string
		setup func(r *testRepo)
		want  map[string]string // name → authoritative role
	}{
		{
			name: "glob paths admit names inside and only inside",
			setup: func(r *testRepo) {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: R, Paths: []string{"docker.io/acme/*"}}, 1)
				r.addTarget(R, "docker.io/acme/app:1.0", []byte("a"), "")
				r.addTarget(R, "docker.io/acme/sub/app:1.0", []byte("b"), "") // * does not cross "/"
				r.addTarget(R, "docker.io/other/app:1.0", []byte("c"), "")
			},
			want: map[string]string{"docker.io/acme/app:1.0": R},
		},
		{
			name: "tag globs",
			setup: func(r *testRepo) {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: R, Paths: []string{"ghcr.io/acme/app:1.*"}}, 1)
				r.addTarget(R, "ghcr.io/acme/app:1.4.2", []byte("a"), "")
				r.addTarget(R, "ghcr.io/acme/app:2.0", []byte("b"), "")
			},
			want: map[string]string{"ghcr.io/acme/app:1.4.2": R},
		},
		{
			name: "path_hash_prefixes",
			setup: func(r *testRepo) {
				in, out := "docker.io/acme/in:1", "docker.io/acme/out:1"
				for hashPrefix(out) == hashPrefix(in) {
					out += "x"
				}
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "bin", PathHashPrefixes: []string{hashPrefix(in)}}, 1)
				r.addTarget("bin", in, []byte("a"), "")
				r.addTarget("bin", out, []byte("b"), "")
			},
			want: map[string]string{"docker.io/acme/in:1": "bin"},
		},
		{
			name: "succinct hash bins admit a name only in its own bin",
			setup: func(r *testRepo) {
				r.delegateBins(metadata.TARGETS, "bins", 2)
				for _, n := range []string{"docker.io/acme/a:1", "docker.io/acme/b:1", "docker.io/acme/c:1"} {
					r.addTarget(r.binFor(metadata.TARGETS, n), n, []byte(n), "")
				}
				wrong := "docker.io/acme/wrong:1"
				right := r.binFor(metadata.TARGETS, wrong)
				for _, bin := range []string{"bins-0", "bins-1", "bins-2", "bins-3"} {
					if bin != right {
						r.addTarget(bin, wrong, []byte("w"), "")
						break
					}
				}
			},
			want: nil, // filled in below: the three names in their bins
		},
		{
			name: "terminating delegation stops the search",
			setup: func(r *testRepo) {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "acme", Paths: []string{"docker.io/acme/*"}, Terminating: true}, 1)
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "everyone", Paths: []string{"*/*/*"}}, 1)
				r.addTarget("acme", "docker.io/acme/app:1", []byte("a"), "")
				r.addTarget("everyone", "docker.io/acme/sneaky:1", []byte("s"), "")
				r.addTarget("everyone", "docker.io/zoo/app:1", []byte("z"), "")
			},
			want: map[string]string{"docker.io/acme/app:1": "acme", "docker.io/zoo/app:1": "everyone"},
		},
		{
			name: "non-terminating delegation falls through",
			setup: func(r *testRepo) {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "acme", Paths: []string{"docker.io/acme/*"}}, 1)
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "everyone", Paths: []string{"*/*/*"}}, 1)
				r.addTarget("everyone", "docker.io/acme/other:1", []byte("o"), "")
			},
			want: map[string]string{"docker.io/acme/other:1": "everyone"},
		},
		{
			name: "nested delegation is bounded by every ancestor's paths",
			setup: func(r *testRepo) {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: R, Paths: []string{"docker.io/acme/*"}}, 1)
				r.delegate(R, metadata.DelegatedRole{Name: R + "/stable", Paths: []string{"docker.io/*/*"}}, 1)
				r.addTarget(R+"/stable", "docker.io/acme/app:2", []byte("a"), "")
				r.addTarget(R+"/stable", "docker.io/other/app:2", []byte("b"), "")
			},
			want: map[string]string{"docker.io/acme/app:2": R + "/stable"},
		},
		{
			name: "the first role in pre-order wins",
			setup: func(r *testRepo) {
				r.addTarget(metadata.TARGETS, "docker.io/acme/app:1", []byte("top"), "")
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "first", Paths: []string{"docker.io/acme/*"}}, 1)
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "second", Paths: []string{"docker.io/acme/*"}}, 1)
				r.addTarget("first", "docker.io/acme/app:1", []byte("first"), "")
				r.addTarget("first", "docker.io/acme/app:2", []byte("first"), "")
				r.addTarget("second", "docker.io/acme/app:2", []byte("second"), "")
			},
			want: map[string]string{"docker.io/acme/app:1": metadata.TARGETS, "docker.io/acme/app:2": "first"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			tc.setup(r)
			r.publish()
			want := tc.want
			if want == nil {
				want = map[string]string{}
				for _, n := range []string{"docker.io/acme/a:1", "docker.io/acme/b:1", "docker.io/acme/c:1"} {
					want[n] = r.binFor(metadata.TARGETS, n)
				}
			}
			srv := newTrustServer(t, r.dir)
			ix := mustIndex(t, r.open(srv.metadataURL(), nil))
			got := map[string]string{}
			for _, n := range ix.Names() {
				tg, _ := ix.Lookup(n)
				got[n] = tg.Role
				owner := r.roles[tg.Role].Signed.Targets[n]
				if owner == nil || owner.Hashes["sha256"].String() != tg.SHA256 {
					t.Errorf("%s: hash is not the one %s lists", n, tg.Role)
				}
			}
			if !maps.Equal(got, want) {
				t.Fatalf("index = %v\nwant    %v", got, want)
			}
		})
	}
}

// A role reachable from two delegators must verify with both: go-tuf
// caches roles by name whichever path loaded them first.
func TestRoleDelegatedTwiceMustVerifyWithBoth(t *testing.T) {
	r := newTestRepo(t)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "a", Paths: []string{"x/*"}}, 1)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "b", Paths: []string{"y/*"}}, 1)
	r.delegate("a", metadata.DelegatedRole{Name: "shared", Paths: []string{"x/*"}}, 1)
	r.delegate("b", metadata.DelegatedRole{Name: "shared", Paths: []string{"y/*"}}, 1) // other key
	r.signers["shared"] = r.signers["shared"][:1]                                      // signed with a's key only
	r.addTarget("shared", "y/evil:1", []byte("e"), "")
	r.publish()
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	if _, err := repo.Index(); err == nil || !strings.Contains(err.Error(), `role "shared" is delegated by "b" too`) {
		t.Fatalf("a role not signed by one of its delegators: Index() = %v", err)
	}

	// Signed with both keys it is fine.
	r2 := newTestRepo(t)
	r2.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "a", Paths: []string{"x/*"}}, 1)
	r2.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "b", Paths: []string{"y/*"}}, 1)
	r2.delegate("a", metadata.DelegatedRole{Name: "shared", Paths: []string{"x/*"}}, 1)
	r2.delegate("b", metadata.DelegatedRole{Name: "shared", Paths: []string{"y/*"}}, 1)
	r2.addTarget("shared", "y/ok:1", []byte("o"), "")
	r2.addTarget("shared", "x/ok:1", []byte("x"), "")
	r2.publish()
	srv2 := newTrustServer(t, r2.dir)
	ix := mustIndex(t, r2.open(srv2.metadataURL(), nil))
	if got := ix.Names(); !slices.Equal(got, []string{"x/ok:1", "y/ok:1"}) {
		t.Fatalf("Names() = %v", got)
	}
}

// Roles verified by an earlier refresh are reused only while they and
// every delegator above them are unchanged.
func TestVerifiedRolesReusedOnlyWhileUnchanged(t *testing.T) {
	const R = "targets/releases"
	tests := []struct {
		name   string
		change func(r *testRepo)
		check  func(t *testing.T, ix *Index, err error)
	}{
		{"delegator rotates the role's key, role not re-signed", func(r *testRepo) {
			d := &r.roles[metadata.TARGETS].Signed.Delegations.Roles[0]
			must(t, r.roles[metadata.TARGETS].Signed.RevokeKey(d.KeyIDs[0], R))
			_, k := newSigner(t) // this key never signs targets/releases
			must(t, r.roles[metadata.TARGETS].Signed.AddKey(k, R))
			r.dirty[metadata.TARGETS] = true
		}, func(t *testing.T, _ *Index, err error) {
			if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
				t.Fatalf("Refresh: %v, want ErrUnsignedMetadata", err)
			}
		}},
		{"delegator narrows the role's paths", func(r *testRepo) {
			r.roles[metadata.TARGETS].Signed.Delegations.Roles[0].Paths = []string{"docker.io/acme/other:*"}
			r.dirty[metadata.TARGETS] = true
		}, func(t *testing.T, ix *Index, err error) {
			must(t, err)
			if _, ok := ix.Lookup("docker.io/acme/app:1.0"); ok {
				t.Fatal("a name outside the narrowed paths is still vouched for")
			}
		}},
		{"another role changes", func(r *testRepo) {
			r.addTarget("other", "docker.io/zoo/x:1", []byte("x"), "")
		}, func(t *testing.T, ix *Index, err error) {
			must(t, err)
			if _, ok := ix.Lookup("docker.io/acme/app:1.0"); !ok {
				t.Fatal("unchanged role lost")
			}
			if _, ok := ix.Lookup("docker.io/zoo/x:1"); !ok {
				t.Fatal("changed role not picked up")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "other", Paths: []string{"docker.io/zoo/*"}}, 1)
			r.publish()
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			mustIndex(t, repo)
			tc.change(r)
			r.publish()
			err := repo.Refresh(t.Context())
			ix, _ := repo.Index()
			tc.check(t, ix, err)
		})
	}
}

func TestReservedRoleNames(t *testing.T) {
	for _, name := range []string{"timestamp", "snapshot", "root", "targets"} {
		t.Run(name, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			r.delegate("targets/releases", metadata.DelegatedRole{Name: name, Paths: []string{"docker.io/acme/*"}}, 1)
			r.publish()
			err := repo.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), "reserved for a top-level role") {
				t.Fatalf("Refresh: %v", err)
			}
			// go-tuf's state is intact: a repaired repository refreshes.
			r.roles["targets/releases"].Signed.Delegations = nil
			r.dirty["targets/releases"] = true
			r.publish()
			must(t, repo.Refresh(t.Context()))
		})
	}
}

// The index resolves names as go-tuf's GetTargetInfo does: a graph of
// overlapping, nested, terminating, hash-prefix and hash-bin delegations,
// every listed name (and some unlisted) asked of both.
func TestResolutionMatchesGoTUF(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { resolutionMatchesGoTUF(t, seed) })
	}
}

func resolutionMatchesGoTUF(t *testing.T, seed uint64) {
	r := newTestRepo(t)
	rng := rand.New(rand.NewPCG(seed, 9))
	names := []string{}
	for i := range 60 {
		names = append(names, fmt.Sprintf("docker.io/%s/app%d:%d", []string{"acme", "zoo", "acme/sub"}[i%3], i%7, i))
	}
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "acme", Paths: []string{"docker.io/acme/*"}}, 1)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "term", Paths: []string{"docker.io/zoo/app1:*", "docker.io/zoo/app3:*"}, Terminating: true}, 1)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "all", Paths: []string{"*/*/*", "*/*/*/*"}}, 1)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "hp", PathHashPrefixes: []string{"A", "b", "-", "0"}}, 1)
	r.delegate("acme", metadata.DelegatedRole{Name: "acme/nested", Paths: []string{"docker.io/*/app2:*", "docker.io/acme/app4:*"}}, 1)
	r.newRole("binsparent")
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "binsparent", Paths: []string{"docker.io/acme/sub/*"}}, 1)
	r.delegateBins("binsparent", "b", 2)
	roles := []string{metadata.TARGETS, "acme", "term", "all", "hp", "acme/nested"}
	for _, n := range names {
		for _, role := range roles {
			if rng.IntN(3) == 0 {
				r.addTarget(role, n, []byte(role+n), "")
			}
		}
		if rng.IntN(2) == 0 {
			bin := r.binFor("binsparent", n)
			if rng.IntN(4) == 0 {
				bin = fmt.Sprintf("b-%d", rng.IntN(4)) // sometimes the wrong bin
			}
			r.addTarget(bin, n, []byte(bin+n), "")
		}
	}
	r.publish()
	srv := newTrustServer(t, r.dir)
	ix := mustIndex(t, r.open(srv.metadataURL(), nil))

	root, err := os.ReadFile(r.rootPath)
	must(t, err)
	cfg, err := config.New(srv.metadataURL(), root)
	must(t, err)
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	up, err := updater.New(cfg)
	must(t, err)
	must(t, up.Refresh())
	found := 0
	for _, n := range append(names, "docker.io/acme/none:1") {
		tf, err := up.GetTargetInfo(n)
		tg, ok := ix.Lookup(n)
		if ok {
			found++
		}
		if (err == nil) != ok {
			t.Fatalf("%s: go-tuf %v, index found=%v", n, err, ok)
		}
		if ok && tf.Hashes["sha256"].String() != tg.SHA256 {
			t.Fatalf("%s: go-tuf resolves to %s, the index to role %s (%s)", n, tf.Hashes["sha256"], tg.Role, tg.SHA256)
		}
	}
	if found < 10 || found > len(names)-5 || found != ix.Len() {
		t.Fatalf("%d of %d names resolve, index Len %d: the graph no longer tests much", found, len(names), ix.Len())
	}
}
