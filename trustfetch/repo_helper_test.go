package trustfetch

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap/zaptest"
)

// testRepo is a real TUF repository with consistent snapshots, signed with
// ed25519 keys, written to dir/metadata and dir/targets in the layout a
// static HTTP server or an air-gapped copy serves.
type testRepo struct {
	t        testing.TB
	dir      string
	rootPath string // the pinned root (version 1), outside the repository

	root      *metadata.Metadata[metadata.RootType]
	roles     map[string]*metadata.Metadata[metadata.TargetsType]
	order     []string // targets roles in creation order
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	signers   map[string][]signature.Signer

	dirty     map[string]bool
	published map[string]bool
	// roleFiles and snapFile are what the next snapshot and timestamp will
	// record; tests overwrite them to stage rollback and mix-and-match.
	roleFiles map[string]signedFile
	snapFile  signedFile
	// skipContent leaves target files unwritten (metadata-only benchmarks).
	skipContent bool
}

type signedFile struct {
	version int64
	bytes   []byte
}

func newSigner(t testing.TB) (signature.Signer, *metadata.Key) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	must(t, err)
	k, err := metadata.KeyFromPublicKey(priv.Public())
	must(t, err)
	return s, k
}

func keyID(t testing.TB, k *metadata.Key) string {
	t.Helper()
	id, err := k.ID()
	must(t, err)
	return id
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func in(d time.Duration) time.Time { return time.Now().UTC().Add(d).Truncate(time.Second) }

// newTestRepo creates root version 1 (pinned) and empty top-level roles;
// nothing but the root is published until publish is called.
func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	r := &testRepo{
		t:         t,
		dir:       t.TempDir(),
		root:      metadata.Root(in(365 * 24 * time.Hour)),
		roles:     map[string]*metadata.Metadata[metadata.TargetsType]{metadata.TARGETS: metadata.Targets(in(30 * 24 * time.Hour))},
		order:     []string{metadata.TARGETS},
		snapshot:  metadata.Snapshot(in(7 * 24 * time.Hour)),
		timestamp: metadata.Timestamp(in(24 * time.Hour)),
		signers:   map[string][]signature.Signer{},
		dirty:     map[string]bool{metadata.TARGETS: true},
		published: map[string]bool{},
		roleFiles: map[string]signedFile{},
	}
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		s, k := newSigner(t)
		must(t, r.root.Signed.AddKey(k, role))
		r.signers[role] = []signature.Signer{s}
	}
	for _, d := range []string{"metadata", "targets"} {
		must(t, os.MkdirAll(filepath.Join(r.dir, d), 0o755))
	}
	b := r.signRoot(r.signers[metadata.ROOT])
	r.rootPath = filepath.Join(t.TempDir(), "root.json")
	must(t, os.WriteFile(r.rootPath, b, 0o644))
	return r
}

func (r *testRepo) metadataDir() string { return filepath.Join(r.dir, "metadata") }

func (r *testRepo) writeMeta(name string, b []byte) {
	// A role name with "/" becomes a subdirectory: go-tuf requests
	// 1.targets%2Freleases.json and a file server decodes that path.
	p := filepath.Join(r.metadataDir(), filepath.FromSlash(name))
	must(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(r.t, os.WriteFile(p, b, 0o644))
}

func (r *testRepo) signRoot(signers []signature.Signer) []byte {
	r.root.ClearSignatures()
	for _, s := range signers {
		_, err := r.root.Sign(s)
		must(r.t, err)
	}
	b, err := r.root.ToBytes(false)
	must(r.t, err)
	r.writeMeta(fmt.Sprintf("%d.root.json", r.root.Signed.Version), b)
	return b
}

// rotateRoot publishes the next root version after mutate has changed it,
// signed by signWith(old root signers, new root signers).
func (r *testRepo) rotateRoot(mutate func(), signWith func(old, new []signature.Signer) []signature.Signer) {
	old := r.signers[metadata.ROOT]
	r.root.Signed.Version++
	mutate()
	r.signRoot(signWith(old, r.signers[metadata.ROOT]))
}

// replaceKey gives a top-level role a fresh key in the (unsigned) root.
func (r *testRepo) replaceKey(role string) {
	for _, id := range r.root.Signed.Roles[role].KeyIDs {
		must(r.t, r.root.Signed.RevokeKey(id, role))
	}
	s, k := newSigner(r.t)
	must(r.t, r.root.Signed.AddKey(k, role))
	r.signers[role] = []signature.Signer{s}
}

// addTarget lists content under name in role and writes the
// hash-prefixed target file.
func (r *testRepo) addTarget(role, name string, content []byte, custom string) *metadata.TargetFiles {
	r.t.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, content, "sha256")
	must(r.t, err)
	if custom != "" {
		raw := json.RawMessage(custom)
		tf.Custom = &raw
	}
	r.roles[role].Signed.Targets[name] = tf
	r.dirty[role] = true
	if !r.skipContent {
		dir, base := path.Split(name)
		p := filepath.Join(r.dir, "targets", filepath.FromSlash(dir), hex.EncodeToString(tf.Hashes["sha256"])+"."+base)
		must(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(r.t, os.WriteFile(p, content, 0o644))
	}
	return tf
}

func (r *testRepo) removeTarget(role, name string) {
	delete(r.roles[role].Signed.Targets, name)
	r.dirty[role] = true
}

// delegate adds role d under parent with nKeys fresh keys.
func (r *testRepo) delegate(parent string, d metadata.DelegatedRole, nKeys int) {
	r.t.Helper()
	p := r.roles[parent]
	if p.Signed.Delegations == nil {
		p.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	if d.Threshold == 0 {
		d.Threshold = 1
	}
	for range nKeys {
		s, k := newSigner(r.t)
		id := keyID(r.t, k)
		p.Signed.Delegations.Keys[id] = k
		d.KeyIDs = append(d.KeyIDs, id)
		r.signers[d.Name] = append(r.signers[d.Name], s)
	}
	p.Signed.Delegations.Roles = append(p.Signed.Delegations.Roles, d)
	r.newRole(d.Name)
	r.dirty[parent] = true
}

func (r *testRepo) newRole(name string) {
	if _, ok := r.roles[name]; !ok {
		r.roles[name] = metadata.Targets(in(30 * 24 * time.Hour))
		r.order = append(r.order, name)
	}
	r.dirty[name] = true
}

// delegateBins delegates everything under parent to 2^bits succinct
// hash-bin roles sharing one key.
func (r *testRepo) delegateBins(parent, prefix string, bits int) {
	r.t.Helper()
	s, k := newSigner(r.t)
	id := keyID(r.t, k)
	sr := &metadata.SuccinctRoles{KeyIDs: []string{id}, Threshold: 1, BitLength: bits, NamePrefix: prefix}
	r.roles[parent].Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{id: k}, SuccinctRoles: sr}
	r.dirty[parent] = true
	for _, name := range sr.GetRoles() {
		r.newRole(name)
		r.signers[name] = []signature.Signer{s}
	}
}

// binFor names the hash bin responsible for a target name.
func (r *testRepo) binFor(parent, name string) string {
	return r.roles[parent].Signed.Delegations.SuccinctRoles.GetRolesForTarget(name)[0].Name
}

// signRole publishes the next version of a targets role (the first
// publication is version 1) and records it for the next snapshot.
func (r *testRepo) signRole(role string) {
	md := r.roles[role]
	if r.published[role] {
		md.Signed.Version++
	}
	r.published[role], r.dirty[role] = true, false
	md.ClearSignatures()
	for _, s := range r.signers[role] {
		_, err := md.Sign(s)
		must(r.t, err)
	}
	b, err := md.ToBytes(false)
	must(r.t, err)
	r.writeMeta(fmt.Sprintf("%d.%s.json", md.Signed.Version, role), b)
	r.roleFiles[role] = signedFile{md.Signed.Version, b}
}

func metaFor(f signedFile) *metadata.MetaFiles {
	sum := sha256.Sum256(f.bytes)
	return &metadata.MetaFiles{Version: f.version, Length: int64(len(f.bytes)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// signSnapshot publishes the next snapshot, recording r.roleFiles.
func (r *testRepo) signSnapshot() {
	if r.published[metadata.SNAPSHOT] {
		r.snapshot.Signed.Version++
	}
	r.published[metadata.SNAPSHOT] = true
	r.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{}
	for role, f := range r.roleFiles {
		r.snapshot.Signed.Meta[role+".json"] = metaFor(f)
	}
	r.snapshot.ClearSignatures()
	for _, s := range r.signers[metadata.SNAPSHOT] {
		_, err := r.snapshot.Sign(s)
		must(r.t, err)
	}
	b, err := r.snapshot.ToBytes(false)
	must(r.t, err)
	r.writeMeta(fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version), b)
	r.snapFile = signedFile{r.snapshot.Signed.Version, b}
}

// signTimestamp publishes the next timestamp, recording r.snapFile.
func (r *testRepo) signTimestamp() {
	if r.published[metadata.TIMESTAMP] {
		r.timestamp.Signed.Version++
	}
	r.published[metadata.TIMESTAMP] = true
	r.timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFor(r.snapFile)}
	r.timestamp.ClearSignatures()
	for _, s := range r.signers[metadata.TIMESTAMP] {
		_, err := r.timestamp.Sign(s)
		must(r.t, err)
	}
	b, err := r.timestamp.ToBytes(false)
	must(r.t, err)
	r.writeMeta("timestamp.json", b)
}

// publish signs every changed targets role, then snapshot and timestamp.
func (r *testRepo) publish() {
	r.t.Helper()
	for _, role := range r.order {
		if r.dirty[role] {
			r.signRole(role)
		}
	}
	r.signSnapshot()
	r.signTimestamp()
}

// copyTree returns a copy of the repository as it is now (to serve an
// old state later).
func (r *testRepo) copyTree() string {
	dst := filepath.Join(r.t.TempDir(), "copy")
	must(r.t, os.CopyFS(dst, os.DirFS(r.dir)))
	return dst
}

// trustServer serves a repository directory over HTTP; it can be switched
// to another directory (an old copy) or taken down.
type trustServer struct {
	*httptest.Server
	dir      atomic.Pointer[string]
	down     atomic.Bool
	requests atomic.Int64
	sent     atomic.Int64 // response body bytes

	mu   sync.Mutex
	hits map[string]int // by request path
}

// hitsOf counts the requests whose path matched keep.
func (ts *trustServer) hitsOf(keep func(path string) bool) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for p, c := range ts.hits {
		if keep(p) {
			n += c
		}
	}
	return n
}

func newTrustServer(t testing.TB, dir string) *trustServer {
	ts := &trustServer{hits: map[string]int{}}
	ts.serve(dir)
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ts.requests.Add(1)
		ts.mu.Lock()
		ts.hits[req.URL.Path]++
		ts.mu.Unlock()
		if ts.down.Load() {
			// A dead server: the connection drops without an answer.
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		http.FileServer(http.Dir(*ts.dir.Load())).ServeHTTP(countingWriter{w, &ts.sent}, req)
	}))
	t.Cleanup(ts.Close)
	return ts
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (ts *trustServer) serve(dir string)    { ts.dir.Store(&dir) }
func (ts *trustServer) metadataURL() string { return ts.URL + "/metadata" }

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// open opens a Repository over metadataLoc with a fresh state directory
// unless mod sets one.
func (r *testRepo) open(metadataLoc string, mod func(*Config, *Options)) *Repository {
	r.t.Helper()
	cfg := Config{Name: "test", Metadata: metadataLoc, Root: r.rootPath, StateDir: r.t.TempDir()}
	opts := Options{Logger: zaptest.NewLogger(r.t)}
	if mod != nil {
		mod(&cfg, &opts)
	}
	repo, err := Open(r.t.Context(), cfg, opts)
	must(r.t, err)
	r.t.Cleanup(func() { _ = repo.Close() })
	return repo
}

// mustIndex fails the test if the repository vouches for nothing.
func mustIndex(t testing.TB, repo *Repository) *Index {
	t.Helper()
	ix, err := repo.Index()
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	return ix
}
