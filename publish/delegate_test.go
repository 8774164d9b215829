package publish_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/trustproxy/trustproxy/publish"
)

func TestDelegatedRoleVerifiesThroughDelegation(t *testing.T) {
	r, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	ids, err := r.Delegate("acme", publish.DelegateOptions{Paths: []string{"docker.io/acme/*"}})
	if err != nil || len(ids) != 1 {
		t.Fatalf("delegate: %v %v", ids, err)
	}
	if _, err := os.Stat(filepath.Join(keysDir, "acme", ids[0]+".key")); err != nil {
		t.Errorf("delegated key file: %v", err)
	}
	// A nested delegation, to check the walk goes more than one level deep.
	if _, err := r.Delegate("acme-web", publish.DelegateOptions{Parent: "acme", Paths: []string{"docker.io/acme/web*"}, KeyType: publish.KeyECDSA}); err != nil {
		t.Fatalf("nested delegate: %v", err)
	}

	for _, tc := range []struct{ name, wantRole string }{
		{"docker.io/acme/app:1.0", "acme"},
		{"docker.io/acme/web-frontend:2.0", "acme-web"},
		{"docker.io/library/alpine:3.20", "targets"},
	} {
		if got := r.RoleFor(tc.name); got != tc.wantRole {
			t.Errorf("RoleFor(%s) = %s, want %s", tc.name, got, tc.wantRole)
		}
		tg, err := r.AddTargetFile("", tc.name, strings.NewReader(tc.name), nil)
		if err != nil || tg.Role != tc.wantRole {
			t.Fatalf("add %s: role %q, %v", tc.name, tg.Role, err)
		}
	}
	res := mustPublish(t, r)
	if res.Roles["acme"] != 1 || res.Roles["acme-web"] != 1 || res.Roles["targets"] != 2 {
		t.Errorf("publish result roles = %v", res.Roles)
	}
	for _, f := range []string{"1.acme.json", "1.acme-web.json"} {
		if _, err := os.Stat(filepath.Join(repoDir, "metadata", f)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	for _, c := range []*tufClient{newHTTPClient(t, repoDir), newDirClient(t, repoDir)} {
		for _, n := range []string{"docker.io/acme/app:1.0", "docker.io/acme/web-frontend:2.0", "docker.io/library/alpine:3.20"} {
			if _, data, err := c.get(n, true); err != nil || string(data) != n {
				t.Errorf("%s client: %s: %q, %v", c.transfer, n, data, err)
			}
		}
	}

	// Only the delegated role changes: targets keeps its version.
	if _, err := r.AddTargetFile("acme", "docker.io/acme/app:1.1", strings.NewReader("1.1"), nil); err != nil {
		t.Fatal(err)
	}
	res = mustPublish(t, r)
	if len(res.Roles) != 1 || res.Roles["acme"] != 2 {
		t.Errorf("second publish signed %v, want only acme v2", res.Roles)
	}
	if _, _, err := newHTTPClient(t, repoDir).get("docker.io/acme/app:1.1", true); err != nil {
		t.Errorf("client: %v", err)
	}
}

func TestDelegationRefusesUnreachableTargets(t *testing.T) {
	r, _, _ := newRepo(t, publish.InitOptions{})
	if _, err := r.Delegate("acme", publish.DelegateOptions{Paths: []string{"docker.io/acme/*"}}); err != nil {
		t.Fatal(err)
	}
	h := sha([]byte("x"))
	// Outside the role's paths: a client would never look there.
	_, err := r.AddTarget("acme", "docker.io/other/app:1", 1, h, nil)
	if err == nil || !strings.Contains(err.Error(), "not delegated this name") {
		t.Errorf("target outside delegation: %v", err)
	}
	// '*' does not cross '/'.
	if _, err := r.AddTarget("acme", "docker.io/acme/team/app:1", 1, h, nil); err == nil {
		t.Error("target in a sub-path of a '*' delegation accepted")
	}
	// Listed in targets first: the delegated copy would be shadowed.
	if _, err := r.AddTarget("targets", "docker.io/acme/app:1", 1, h, nil); err != nil {
		t.Fatal(err)
	}
	_, err = r.AddTarget("acme", "docker.io/acme/app:1", 1, h, nil)
	if err == nil || !strings.Contains(err.Error(), "find it in role targets first") {
		t.Errorf("shadowed target: %v", err)
	}
	if got := r.Targets(); len(got) != 1 || got[0].Role != "targets" {
		t.Errorf("failed adds left entries behind: %+v", got)
	}
}

func TestDelegateValidation(t *testing.T) {
	r, _, _ := newRepo(t, publish.InitOptions{})
	for _, tc := range []struct {
		role string
		opts publish.DelegateOptions
		want string
	}{
		{"targets", publish.DelegateOptions{Paths: []string{"a/*"}}, "invalid role name"},
		{"a/b", publish.DelegateOptions{Paths: []string{"a/*"}}, "invalid role name"},
		{"x", publish.DelegateOptions{}, "no paths"},
		{"x", publish.DelegateOptions{Paths: []string{"a/["}}, "syntax error in pattern"},
		{"x", publish.DelegateOptions{Paths: []string{"a/*"}, Parent: "nope"}, "no parent role"},
		{"x", publish.DelegateOptions{Paths: []string{"a/*"}, Threshold: 2, Keys: 1}, "threshold 2 with 1 key"},
		{"x", publish.DelegateOptions{Paths: []string{"a/*"}, KeyType: "dsa"}, "unknown key type"},
	} {
		if _, err := r.Delegate(tc.role, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Delegate(%q, %+v) = %v, want %q", tc.role, tc.opts, err, tc.want)
		}
	}
	if _, err := r.Delegate("x", publish.DelegateOptions{Paths: []string{"a/*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delegate("x", publish.DelegateOptions{Paths: []string{"a/*"}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second delegation to x: %v", err)
	}
}

// TestDelegateToExistingKey: the role's key was made elsewhere; publishing
// needs its private half in the keyring and says so until it is there.
func TestDelegateToExistingKey(t *testing.T) {
	r, repoDir, keysDir := newRepo(t, publish.InitOptions{})
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delegate("team", publish.DelegateOptions{Paths: []string{"example.com/team/*"}, PublicKeys: []crypto.PublicKey{pub}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish(t.Context()); err == nil || !strings.Contains(err.Error(), "sign team: need 1 signature") {
		t.Fatalf("publish without the team key: %v", err)
	}
	pemBytes, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(keysDir, "team"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keysDir, "team", "mine.key"), pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddTargetFile("", "example.com/team/app:1", strings.NewReader("app"), nil); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, r)
	if _, _, err := newHTTPClient(t, repoDir).get("example.com/team/app:1", true); err != nil {
		t.Errorf("client: %v", err)
	}
}
