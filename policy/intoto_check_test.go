package policy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	in_toto "github.com/in-toto/in-toto-golang/in_toto"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/policy/intoto"
	"github.com/trustproxy/trustproxy/publish"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// countingTrust counts target downloads, to show what is refused before
// anything is fetched.
type countingTrust struct {
	*trustfetch.Repository
	fetched atomic.Int64
}

func (c *countingTrust) FetchTarget(ctx context.Context, t trustfetch.Target) ([]byte, error) {
	c.fetched.Add(1)
	return c.Repository.FetchTarget(ctx, t)
}

type inTotoKey struct {
	priv, pub in_toto.Key
	pubPEM    []byte
}

func newInTotoKey(t *testing.T) inTotoKey {
	t.Helper()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(sk)
	var k inTotoKey
	if err := k.priv.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(sk.Public())
	k.pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder})
	if err := k.pub.LoadKeyReaderDefaults(bytes.NewReader(k.pubPEM)); err != nil {
		t.Fatal(err)
	}
	return k
}

func signedJSON(t *testing.T, payload any, k inTotoKey) []byte {
	t.Helper()
	mb := in_toto.Metablock{Signed: payload, Signatures: []in_toto.Signature{}}
	if err := mb.Sign(k.priv); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(mb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inTotoRepo publishes, for tag "<name>:<tag>", the manifest target with the
// given layout and links as in-toto targets, the layout key as a TUF target.
type inTotoRepo struct {
	t        *testing.T
	dir      string
	repo     *publish.Repo
	owner    inTotoKey
	manifest []byte
}

func newInTotoRepo(t *testing.T) *inTotoRepo {
	dir := t.TempDir()
	repoDir, keysDir := filepath.Join(dir, "repo"), filepath.Join(dir, "keys")
	if _, err := publish.Init(t.Context(), repoDir, keysDir, publish.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := publish.Open(repoDir, keysDir, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &inTotoRepo{t: t, dir: dir, repo: r, owner: newInTotoKey(t), manifest: []byte(`{"schemaVersion":2}`)}
}

func (r *inTotoRepo) add(name string, data []byte, custom map[string]any) string {
	r.t.Helper()
	if _, err := r.repo.AddTargetFile("", name, bytes.NewReader(data), custom); err != nil {
		r.t.Fatal(err)
	}
	return name
}

// publishTag adds tag with layout (steps×1 link each) signed by signer.
func (r *inTotoRepo) publishTag(tag string, steps int, signer inTotoKey) {
	r.t.Helper()
	fn := newInTotoKey(r.t)
	sum := sha256.Sum256(r.manifest)
	subject := map[string]in_toto.HashObj{"manifest.json": {"sha256": hex.EncodeToString(sum[:])}}
	layout := in_toto.Layout{Type: "layout", Inspect: []in_toto.Inspection{}, Readme: "",
		Expires: time.Now().UTC().Add(24 * time.Hour).Format(in_toto.ISO8601DateSchema),
		Keys:    map[string]in_toto.Key{fn.pub.KeyID: fn.pub}}
	const base = "up/acme/app"
	listed := []string{}
	var links []string
	for i := range steps {
		name := fmt.Sprintf("step%d", i)
		layout.Steps = append(layout.Steps, in_toto.Step{Type: "step", PubKeys: []string{fn.pub.KeyID}, Threshold: 1,
			ExpectedCommand: []string{}, SupplyChainItem: in_toto.SupplyChainItem{Name: name,
				ExpectedMaterials: [][]string{{"ALLOW", "*"}}, ExpectedProducts: [][]string{{"ALLOW", "*"}}}})
		link := in_toto.Link{Type: "link", Name: name, Materials: map[string]in_toto.HashObj{}, Products: subject,
			ByProducts: map[string]any{}, Command: []string{}, Environment: map[string]any{}}
		links = append(links, r.add(fmt.Sprintf("%s/in-toto-metadata/%x/%s.%s.link", base, sum, name, fn.pub.KeyID[:8]),
			signedJSON(r.t, link, fn), nil))
	}
	keyTarget := r.add(base+"/in-toto-pubkeys/"+r.owner.pub.KeyID+".pub", r.owner.pubPEM, nil)
	listed = append(listed, r.add(base+"/in-toto-metadata/"+tag+"/root.layout", signedJSON(r.t, layout, signer),
		map[string]any{"in-toto": []string{keyTarget}}))
	listed = append(listed, links...)
	r.add(base+":"+tag, r.manifest, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "in-toto": listed})
}

func (r *inTotoRepo) engine(in InTotoConfig) (*Engine, *countingTrust) {
	r.t.Helper()
	if _, err := r.repo.Publish(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
	repo, err := trustfetch.Open(r.t.Context(), trustfetch.Config{
		Name: "corp", Metadata: filepath.Join(r.dir, "repo", "metadata"), Root: r.repo.RootPath(),
		StateDir: filepath.Join(r.t.TempDir(), "state"), Refresh: time.Hour,
	}, trustfetch.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	ct := &countingTrust{Repository: repo}
	e, err := New(Config{Rules: []Rule{{Name: "acme", Match: "up/acme/**", Mode: ModeEnforce, Trust: "corp",
		Require: []string{RequireTUF, RequireInToto}, InToto: in}}}, map[string]TrustSource{"corp": ct}, Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	return e, ct
}

func (r *inTotoRepo) check(e *Engine, tag string) Decision {
	return e.CheckManifest(r.t.Context(), Subject{Upstream: "up", Repository: "acme/app", Tag: tag},
		digest.FromBytes(r.manifest), "application/vnd.oci.image.manifest.v1+json", r.manifest)
}

// Limits are checked before downloading and worded as limits; a rule may
// raise them.
func TestInTotoLimitsBeforeDownload(t *testing.T) {
	r := newInTotoRepo(t)
	r.publishTag("small", 2, r.owner)
	r.publishTag("long", 70, r.owner)

	e, ct := r.engine(InTotoConfig{})
	if d := r.check(e, "small"); !d.Allowed {
		t.Fatalf("small: %s", d.Reason)
	}

	ct.fetched.Store(0)
	d := r.check(e, "long")
	want := "in-toto: over a limit: the layout has 70 steps, the limit is 64 steps (raise it with the rule's inToto.limits.maxSteps)"
	if d.Allowed || d.Reason != want {
		t.Fatalf("long: allowed=%v reason %q, want %q", d.Allowed, d.Reason, want)
	}
	if n := ct.fetched.Load(); n != 1 {
		t.Errorf("%d downloads for a layout over the step limit, want 1 (the layout, no links)", n)
	}

	e, ct = r.engine(InTotoConfig{Limits: intoto.Limits{MaxLinks: 10}})
	d = r.check(e, "long")
	if d.Allowed || !strings.Contains(d.Reason, "the artifact lists 70 links, the limit is 10 links") {
		t.Fatalf("link limit: %q", d.Reason)
	}
	if n := ct.fetched.Load(); n != 0 {
		t.Errorf("%d downloads for an artifact over the link limit, want none", n)
	}

	e, _ = r.engine(InTotoConfig{Limits: intoto.Limits{MaxSteps: 100}})
	if d := r.check(e, "long"); !d.Allowed {
		t.Fatalf("long with maxSteps 100: %s", d.Reason)
	}
}

// A denial names where the layout key came from: the trust repository's
// key target, or the rule that pinned it.
func TestInTotoDenialNamesKeySource(t *testing.T) {
	r := newInTotoRepo(t)
	r.publishTag("1.0", 1, newInTotoKey(t)) // signed by a key nobody trusts

	e, _ := r.engine(InTotoConfig{})
	d := r.check(e, "1.0")
	want := fmt.Sprintf(`(from the trust repository, target "up/acme/app/in-toto-pubkeys/%s.pub")`, r.owner.pub.KeyID)
	if d.Allowed || !strings.Contains(d.Reason, want) || strings.Contains(d.Reason, "pinned") {
		t.Fatalf("reason %q, want it to contain %q and not say pinned", d.Reason, want)
	}

	e, _ = r.engine(InTotoConfig{LayoutKeys: [][]byte{r.owner.pubPEM}})
	d = r.check(e, "1.0")
	if want := `(pinned in rule "acme", inToto.layoutKeys[0])`; d.Allowed || !strings.Contains(d.Reason, want) {
		t.Fatalf("reason %q, want it to contain %q", d.Reason, want)
	}
}
