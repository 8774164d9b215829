package proxy

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/internal/testenv"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/trustfetch"
)

func newSharedCache(t testing.TB, d storagedriver.StorageDriver) *cache.Cache {
	t.Helper()
	c, err := cache.New(context.Background(), d, cache.Options{SpoolDir: t.TempDir(), StagingGrace: time.Hour})
	if err != nil {
		t.Fatalf("cache: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// replica starts another trustproxy on te's upstream, trust server and the
// storage driver d, with its own trust state, cache index and approvals:
// what a second replica (or the same one after a restart) is.
func (te *trustEnv) replica(t *testing.T, d storagedriver.StorageDriver) (*env, *trustfetch.Repository) {
	t.Helper()
	log := zaptest.NewLogger(t)
	trust, err := trustfetch.Open(context.Background(), trustfetch.Config{
		Name: "corp", Metadata: te.tufSrv.URL + "/metadata", Root: te.repo.RootPath(),
		StateDir: filepath.Join(t.TempDir(), "state"), Refresh: time.Hour,
	}, trustfetch.Options{Logger: log, Now: te.clock.Now})
	if err != nil {
		t.Fatalf("open trust repository: %v", err)
	}
	e := newEnvFor(t, te.up, envOpts{cache: newSharedCache(t, d), rules: trustRules(),
		trusts: map[string]policy.TrustSource{"corp": trust}, log: log})
	return e, trust
}

// A digest of an approved tree is served by a process that never saw the
// parent: after a restart, and by a replica on the same storage (porter
// reads the bundle from its own cache and pulls the images by digest only).
// Revoking the target still denies them there after one refresh.
func TestApprovalsSurviveRestartAndReachReplicas(t *testing.T) {
	drv := filesystem.New(filesystem.DriverParameters{RootDirectory: t.TempDir(), MaxThreads: 100})
	te := newTrustEnvWith(t, envOpts{cache: newSharedCache(t, drv)})
	p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	te.signBundle(t, "acme/bundle:1.0", p, false)
	idx := te.up.PushRandomIndex(t, "acme/multi:1.0", 3, types.OCIImageIndex)
	te.sign(t, "acme/multi:1.0", nil)

	// Only the parents go through the first process.
	for _, path := range []string{"/v2/acme/bundle/manifests/1.0", "/v2/acme/multi/manifests/1.0"} {
		resp := te.get(t, "GET", path, map[string]string{"Accept": acceptAll})
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	type child struct{ repo, digest string }
	children := []child{{"acme/bundle", p.Invocation.String()}, {"acme/bundle", p.ConfigManifestDigest.String()}}
	for _, d := range p.Components {
		children = append(children, child{"acme/bundle", d.String()})
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		children = append(children, child{"acme/multi", m.Digest.String()})
	}

	restarted, _ := te.replica(t, drv)
	replica, replicaTrust := te.replica(t, drv)
	for name, e := range map[string]*env{"restarted": restarted, "replica": replica} {
		for _, c := range children {
			if code, msg := e.pullTree(t, c.repo, c.digest); code != 200 {
				t.Fatalf("%s: %s@%s: %d %s", name, c.repo, c.digest, code, msg)
			}
		}
		resp := e.get(t, "GET", "/v2/acme/bundle/blobs/"+p.BundleDigest.String(), nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: bundle.json blob: %d", name, resp.StatusCode)
		}
	}

	for _, target := range []string{"acme/bundle:1.0", "acme/multi:1.0"} {
		if _, err := te.repo.RemoveTarget("targets", upName+"/"+target); err != nil {
			t.Fatal(err)
		}
	}
	te.publish(t)
	if err := replicaTrust.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		if code, msg := ociErr(t, replica.get(t, "GET", "/v2/"+c.repo+"/manifests/"+c.digest, nil)); code != "DENIED" {
			t.Fatalf("replica after revocation: %s@%s: %s %s", c.repo, c.digest, code, msg)
		}
	}
}

// A digest nothing approved covers is denied with a hint at why.
func TestUncoveredDigestDenialHints(t *testing.T) {
	te := newTrustEnv(t)
	p := te.up.PushBundle(t, "acme/bundle:1.0", testenv.SampleBundle(), testenv.BundleOCI)
	te.signBundle(t, "acme/bundle:1.0", p, false)
	code, msg := ociErr(t, te.get(t, "GET", "/v2/acme/bundle/manifests/"+p.Invocation.String(), nil))
	if code != "DENIED" || !strings.Contains(msg, "is not the hash of any target") ||
		!strings.Contains(msg, "nor does any approved index or CNAB bundle of "+upName+"/acme/bundle name it") ||
		!strings.Contains(msg, "pull the index or bundle by its signed tag") {
		t.Fatalf("denial: %s %s", code, msg)
	}
}

func allowEngine(t *testing.T) *policy.Engine {
	t.Helper()
	e, err := policy.New(policy.Config{Rules: []policy.Rule{{Name: "open", Match: upName + "/**", Mode: policy.ModeAllow}}}, nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func openGrant(repo string) *grant {
	return &grant{subject: policy.Subject{Upstream: upName, Repository: repo, Tag: "1"},
		decision: policy.Decision{Allowed: true, Mode: policy.ModeAllow, Rule: "open"}}
}

// coverMany covers n fresh digests of repo in batches.
func coverMany(a *approvals, repo string, n int) {
	g := openGrant(repo)
	batch := make([]covered, 0, 4096)
	for i := 0; i < n; i++ {
		batch = append(batch, covered{digest.FromString(fmt.Sprintf("%s %d", repo, i)), 1})
		if len(batch) == cap(batch) || i == n-1 {
			a.cover(context.Background(), upName+"/"+repo, batch, g)
			batch = batch[:0]
		}
	}
}

// One client requesting huge manifests in its repository used to clear
// every repository's approvals at 2^20 entries, so approved blobs elsewhere
// answered 403. Now a repository's flood only evicts its own entries.
func TestApprovalsBusyRepositoryKeepsOthers(t *testing.T) {
	e := allowEngine(t)
	a := newApprovals(nil, zap.NewNop())
	mine := digest.FromString("mine")
	a.cover(context.Background(), upName+"/a", []covered{{mine, 5}}, openGrant("a"))
	coverMany(a, "busy", 1<<20+1)
	if g, size := a.covering(context.Background(), upName+"/a", mine, e); g == nil || size != 5 {
		t.Fatalf("approval of another repository lost while one was busy: %v %d", g, size)
	}
	if a.n > maxCovered || len(a.repos[upName+"/busy"].byDigest) > maxCoveredPerRepo {
		t.Fatalf("memory unbounded: %d entries, %d in the busy repository", a.n, len(a.repos[upName+"/busy"].byDigest))
	}
}

// When many repositories are busy, idle ones leave memory but not the
// store: their next use reads them back.
func TestApprovalsEvictedFromMemoryReadBack(t *testing.T) {
	e := allowEngine(t)
	c, err := cache.New(context.Background(), inmemory.New(), cache.Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := newApprovals(c, zap.NewNop())
	a.perRepo, a.total = 8, 32
	mine := digest.FromString("mine")
	a.cover(context.Background(), upName+"/a", []covered{{mine, 5}}, openGrant("a"))
	for i := range 10 {
		coverMany(a, fmt.Sprintf("busy%d", i), 20)
	}
	if a.peekLocked(upName+"/a", mine) != nil || a.n > 32 {
		t.Fatalf("bounds not applied: %d entries", a.n)
	}
	if g, size := a.covering(context.Background(), upName+"/a", mine, e); g == nil || size != 5 {
		t.Fatalf("evicted approval not read back from the store: %v %d", g, size)
	}
	// Not covered anywhere: still denied.
	if g, _ := a.covering(context.Background(), upName+"/a", digest.FromString("other"), e); g != nil {
		t.Fatal("uncovered digest approved")
	}
}

// A record that does not match the repository it is filed under (a bug or
// tampering with the bucket) approves nothing.
func TestApprovalRecordForOtherRepositoryIgnored(t *testing.T) {
	e := allowEngine(t)
	c, err := cache.New(context.Background(), inmemory.New(), cache.Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("x")
	g := openGrant("other")
	body, err := encodeGrant(g, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PutRecord(context.Background(), approvalSet, approvalKey(upName+"/a", d), g.id(), body); err != nil {
		t.Fatal(err)
	}
	a := newApprovals(c, zap.NewNop())
	if g, _ := a.covering(context.Background(), upName+"/a", d, e); g != nil {
		t.Fatal("record of another repository approved a digest")
	}
}
