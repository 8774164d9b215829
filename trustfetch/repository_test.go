package trustfetch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const manifestType = "application/vnd.oci.image.manifest.v1+json"

// releasesRepo is the common shape: a top-level target and a
// targets/releases role trusted for docker.io/acme/*.
func releasesRepo(t *testing.T) *testRepo {
	r := newTestRepo(t)
	r.addTarget(metadata.TARGETS, "docker.io/acme/in-toto-metadata/root.layout", []byte(`{"layout":1}`), `{"in-toto":["docker.io/acme/in-toto-pubkeys/abc.pub"]}`)
	r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "targets/releases", Paths: []string{"docker.io/acme/*"}}, 1)
	r.addTarget("targets/releases", "docker.io/acme/app:1.0", []byte(`{"schemaVersion":2}`), `{"mediaType":"`+manifestType+`","in-toto":["docker.io/acme/in-toto-metadata/root.layout"]}`)
	r.addTarget("targets/releases", "docker.io/evil/app:1.0", []byte(`{"evil":true}`), "")
	r.publish()
	return r
}

func TestRefreshWithDelegation(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	ix := mustIndex(t, repo)

	if got, want := strings.Join(ix.Names(), ","), "docker.io/acme/app:1.0,docker.io/acme/in-toto-metadata/root.layout"; got != want {
		t.Fatalf("Names() = %s, want %s (a role must not vouch outside its paths)", got, want)
	}
	if _, ok := ix.Lookup("docker.io/evil/app:1.0"); ok {
		t.Fatal("docker.io/evil/app:1.0 is outside targets/releases' paths but is in the index")
	}
	app, ok := ix.Lookup("docker.io/acme/app:1.0")
	if !ok {
		t.Fatal("docker.io/acme/app:1.0 missing")
	}
	want := r.roles["targets/releases"].Signed.Targets["docker.io/acme/app:1.0"]
	if app.Role != "targets/releases" || app.Length != want.Length || app.SHA256 != want.Hashes["sha256"].String() {
		t.Fatalf("app = %+v, want role targets/releases, length %d, sha256 %s", app, want.Length, want.Hashes["sha256"])
	}
	if app.Digest().String() != "sha256:"+app.SHA256 || app.Digest().Validate() != nil {
		t.Fatalf("Digest() = %s", app.Digest())
	}
	if app.MediaType() != manifestType {
		t.Fatalf("MediaType() = %q", app.MediaType())
	}
	if got := app.InToto(); len(got) != 1 || got[0] != "docker.io/acme/in-toto-metadata/root.layout" {
		t.Fatalf("InToto() = %q", got)
	}
	layout, _ := ix.Lookup("docker.io/acme/in-toto-metadata/root.layout")
	if layout.Role != metadata.TARGETS || layout.MediaType() != "" {
		t.Fatalf("layout = %+v", layout)
	}
	if got := ix.ByDigest(app.SHA256); len(got) != 1 || got[0].Name != app.Name {
		t.Fatalf("ByDigest = %+v", got)
	}
	if got := ix.ByDigest("sha256:" + app.SHA256); len(got) != 1 {
		t.Fatalf("ByDigest with prefix = %+v", got)
	}
	if ix.Len() != 2 {
		t.Fatalf("Len() = %d", ix.Len())
	}
	if got, want := ix.Versions(), (Versions{Root: 1, Timestamp: 1, Snapshot: 1, Targets: 1}); got != want {
		t.Fatalf("Versions() = %+v, want %+v", got, want)
	}
	if !ix.Expires().Equal(r.timestamp.Signed.Expires) {
		t.Fatalf("Expires() = %s, want the timestamp's %s", ix.Expires(), r.timestamp.Signed.Expires)
	}
	if repo.Name() != "test" {
		t.Fatalf("Name() = %q", repo.Name())
	}
}

func TestRevocation(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	repo := r.open(srv.metadataURL(), nil)
	if _, ok := mustIndex(t, repo).Lookup("docker.io/acme/app:1.0"); !ok {
		t.Fatal("app missing before revocation")
	}
	r.removeTarget("targets/releases", "docker.io/acme/app:1.0")
	r.publish()
	must(t, repo.Refresh(t.Context()))
	ix := mustIndex(t, repo)
	if _, ok := ix.Lookup("docker.io/acme/app:1.0"); ok {
		t.Fatal("a target removed from TUF is still in the index")
	}
	if v := ix.Versions(); v.Snapshot != 2 || v.Timestamp != 2 || v.Targets != 1 {
		t.Fatalf("Versions() = %+v", v)
	}
}

func TestThresholdNotMet(t *testing.T) {
	for _, role := range []string{metadata.TARGETS, "targets/releases"} {
		t.Run(role, func(t *testing.T) {
			r := newTestRepo(t)
			if role == metadata.TARGETS {
				s, k := newSigner(t)
				must(t, r.root.Signed.AddKey(k, metadata.TARGETS))
				r.root.Signed.Roles[metadata.TARGETS].Threshold = 2
				r.signers[metadata.TARGETS] = append(r.signers[metadata.TARGETS], s)
				b := r.signRoot(r.signers[metadata.ROOT])
				must(t, writeFileAtomic(r.rootPath, b))
			} else {
				r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: role, Paths: []string{"docker.io/acme/*"}, Threshold: 2}, 2)
			}
			r.addTarget(role, "docker.io/acme/app:1.0", []byte("v1"), "")
			r.publish()
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			if _, ok := mustIndex(t, repo).Lookup("docker.io/acme/app:1.0"); !ok {
				t.Fatal("signed by both keys: target missing")
			}

			r.signers[role] = r.signers[role][:1]
			r.addTarget(role, "docker.io/acme/app:2.0", []byte("v2"), "")
			r.publish()
			err := repo.Refresh(t.Context())
			if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
				t.Fatalf("Refresh with 1 of 2 signatures: %v, want ErrUnsignedMetadata", err)
			}
			ix := mustIndex(t, repo)
			if _, ok := ix.Lookup("docker.io/acme/app:2.0"); ok || ix.Versions().Snapshot != 1 {
				t.Fatalf("previous index not kept: %+v", ix.Versions())
			}
		})
	}
}

func TestRollback(t *testing.T) {
	tests := []struct {
		name string
		// roll serves older metadata after version 2 was verified.
		roll func(r *testRepo, srv *trustServer, v1 string, v1Snap signedFile, v1Roles map[string]signedFile)
	}{
		{"timestamp", func(r *testRepo, srv *trustServer, v1 string, _ signedFile, _ map[string]signedFile) {
			srv.serve(v1)
		}},
		{"snapshot", func(r *testRepo, _ *trustServer, _ string, v1Snap signedFile, _ map[string]signedFile) {
			r.snapFile = v1Snap // a fresh timestamp naming the old snapshot
			r.signTimestamp()
		}},
		{"targets", func(r *testRepo, _ *trustServer, _ string, _ signedFile, v1Roles map[string]signedFile) {
			r.roleFiles[metadata.TARGETS] = v1Roles[metadata.TARGETS]
			r.signSnapshot()
			r.signTimestamp()
		}},
		{"delegated role", func(r *testRepo, _ *trustServer, _ string, _ signedFile, v1Roles map[string]signedFile) {
			r.roleFiles["targets/releases"] = v1Roles["targets/releases"]
			r.signSnapshot()
			r.signTimestamp()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			v1, v1Snap := r.copyTree(), r.snapFile
			v1Roles := map[string]signedFile{}
			for k, v := range r.roleFiles {
				v1Roles[k] = v
			}
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)

			r.addTarget(metadata.TARGETS, "docker.io/acme/top:2.0", []byte("top2"), "")
			r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("app2"), "")
			r.publish()
			must(t, repo.Refresh(t.Context()))
			before := mustIndex(t, repo)

			tc.roll(r, srv, v1, v1Snap, v1Roles)
			err := repo.Refresh(t.Context())
			if !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
				t.Fatalf("Refresh after rollback: %v, want ErrBadVersionNumber", err)
			}
			if after := mustIndex(t, repo); after != before {
				t.Fatalf("index replaced after a failed refresh")
			}
		})
	}
}

func TestFreezeAtRefresh(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		role   string
		expire func(r *testRepo)
	}{
		{"timestamp", func(r *testRepo) { r.timestamp.Signed.Expires = past }},
		{"snapshot", func(r *testRepo) { r.snapshot.Signed.Expires = past }},
		{"targets", func(r *testRepo) { r.roles[metadata.TARGETS].Signed.Expires = past }},
		{"targets/releases", func(r *testRepo) { r.roles["targets/releases"].Signed.Expires = past }},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			before := mustIndex(t, repo)

			tc.expire(r)
			r.dirty[metadata.TARGETS], r.dirty["targets/releases"] = true, true
			r.publish()
			err := repo.Refresh(t.Context())
			if !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				t.Fatalf("Refresh with expired %s: %v, want ErrExpiredMetadata", tc.role, err)
			}
			if mustIndex(t, repo) != before {
				t.Fatal("index replaced after a failed refresh")
			}

			// A repository that never saw good data vouches for nothing.
			fresh := r.open(srv.metadataURL(), nil)
			_, err = fresh.Index()
			if !errors.Is(err, ErrNoTrustData) || !errors.Is(err.(*UnavailableError).LastRefresh, &metadata.ErrExpiredMetadata{}) {
				t.Fatalf("Index on a repository whose first refresh saw expired %s: %v", tc.role, err)
			}
		})
	}
}

func TestExpiryBetweenRefreshes(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *testRepo)
		role  string
	}{
		{"timestamp first", func(r *testRepo) {}, "timestamp"},
		{"delegated role first", func(r *testRepo) {
			r.roles["targets/releases"].Signed.Expires = in(time.Hour)
		}, "targets/releases"},
		{"root first", func(r *testRepo) {
			r.root.Signed.Expires = in(2 * time.Hour)
			r.root.Signed.Version++
			r.signRoot(r.signers[metadata.ROOT])
		}, "root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRepo(t)
			r.delegate(metadata.TARGETS, metadata.DelegatedRole{Name: "targets/releases", Paths: []string{"docker.io/acme/*"}}, 1)
			r.addTarget("targets/releases", "docker.io/acme/app:1.0", []byte("x"), "")
			tc.setup(r)
			r.publish()
			clock := newTestClock()
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), func(_ *Config, o *Options) { o.Now = clock.Now })
			ix := mustIndex(t, repo)
			exp := ix.Expires()

			clock.Set(exp.Add(-time.Second))
			if _, err := repo.Index(); err != nil {
				t.Fatalf("one second before expiry: %v", err)
			}
			clock.Set(exp)
			_, err := repo.Index()
			var ue *UnavailableError
			if !errors.Is(err, ErrExpired) || !errors.As(err, &ue) || ue.Role != tc.role || !ue.Expired.Equal(exp) {
				t.Fatalf("at expiry: %v, want ErrExpired naming %s", err, tc.role)
			}
			if !strings.Contains(err.Error(), "vouches for nothing") || !strings.Contains(err.Error(), tc.role+".json") {
				t.Fatalf("message not clear: %v", err)
			}
		})
	}
}

func TestMixAndMatch(t *testing.T) {
	tests := []struct {
		name string
		mix  func(r *testRepo)
		want error
	}{
		{"targets content differs from the snapshot's hash", func(r *testRepo) {
			// Another validly signed targets.json, same version and length.
			r.roles[metadata.TARGETS].Signed.Expires = r.roles[metadata.TARGETS].Signed.Expires.Add(time.Second)
			r.published[metadata.TARGETS] = false // keep the version
			r.signRole(metadata.TARGETS)
		}, &metadata.ErrLengthOrHashMismatch{}},
		{"targets longer than the snapshot's length", func(r *testRepo) {
			r.addTarget(metadata.TARGETS, "docker.io/acme/other:1.0", []byte("other"), "")
			r.published[metadata.TARGETS] = false
			r.signRole(metadata.TARGETS)
		}, &metadata.ErrDownloadLengthMismatch{}},
		{"delegated role content differs from the snapshot's hash", func(r *testRepo) {
			r.addTarget("targets/releases", "docker.io/acme/app:2.0", []byte("2"), "")
			r.publish()
			md := r.roles["targets/releases"]
			md.Signed.Expires = md.Signed.Expires.Add(time.Second)
			r.published["targets/releases"] = false // overwrite the version just published
			r.signRole("targets/releases")
		}, &metadata.ErrLengthOrHashMismatch{}},
		{"targets version differs from the snapshot's", func(r *testRepo) {
			old := r.roleFiles[metadata.TARGETS]
			r.roleFiles[metadata.TARGETS] = signedFile{old.version + 1, old.bytes} // served as N+1.targets.json
			r.writeMeta("3.targets.json", old.bytes)
			r.signSnapshot()
			r.signTimestamp()
		}, &metadata.ErrBadVersionNumber{}},
		{"snapshot content differs from the timestamp's hash", func(r *testRepo) {
			r.snapshot.Signed.Expires = r.snapshot.Signed.Expires.Add(time.Hour)
			r.published[metadata.SNAPSHOT] = false
			r.signSnapshot() // same version, other bytes, timestamp not re-signed
		}, &metadata.ErrLengthOrHashMismatch{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := releasesRepo(t)
			srv := newTrustServer(t, r.dir)
			repo := r.open(srv.metadataURL(), nil)
			before := mustIndex(t, repo)

			r.addTarget(metadata.TARGETS, "docker.io/acme/top:2.0", []byte("2"), "")
			r.publish()
			tc.mix(r)
			err := repo.Refresh(t.Context())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Refresh: %v, want %T", err, tc.want)
			}
			if mustIndex(t, repo) != before {
				t.Fatal("index replaced after a failed refresh")
			}
		})
	}
}

// go-tuf verifies with the injected clock too, so that refresh-time and
// between-refresh expiry agree.
func TestRefreshUsesInjectedClock(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	clock := newTestClock()
	clock.Set(r.timestamp.Signed.Expires.Add(time.Second))
	repo := r.open(srv.metadataURL(), func(_ *Config, o *Options) { o.Now = clock.Now })
	_, err := repo.Index()
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(ue.LastRefresh, &metadata.ErrExpiredMetadata{}) {
		t.Fatalf("Index with the clock past the timestamp's expiry: %v", err)
	}
}
