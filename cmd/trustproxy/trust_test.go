package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// runTrustArgs runs `trustproxy trust <args>` with {repo}, {keys} and {reg}
// replaced, and returns its output.
func runTrustArgs(t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	expanded := make([]string, len(args))
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "{"+k+"}", v)
		}
		expanded[i] = a
	}
	var stdout, stderr bytes.Buffer
	err := runTrust(context.Background(), expanded, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func digestOf(t *testing.T, img v1.Image) (string, int64) {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Hex, int64(len(raw))
}

// TestTrustWorkflow drives the publisher the way a user does, one process
// per command, against a real registry; then a go-tuf client checks what was
// published.
func TestTrustWorkflow(t *testing.T) {
	reg := testenv.NewRegistry(t)
	alpine := reg.PushRandomImage(t, "library/alpine:3.20", 512, 1, types.OCIManifestSchema1)
	reg.PushRandomImage(t, "library/alpine:3.19", 512, 1, types.DockerManifestSchema2)
	app := reg.PushRandomImage(t, "team/app:1", 512, 1, types.DockerManifestSchema2)
	web := reg.PushRandomImage(t, "acme/web:2", 512, 1, types.OCIManifestSchema1)
	alpineHex, alpineLen := digestOf(t, alpine)
	webHex, webLen := digestOf(t, web)
	appHex, _ := digestOf(t, app)

	base := t.TempDir()
	vars := map[string]string{"repo": filepath.Join(base, "repo"), "keys": filepath.Join(base, "keys"), "reg": reg.Host}
	steps := []struct {
		args []string
		want []string // substrings of stdout
	}{
		{[]string{"init", "--repo", "{repo}", "--keys", "{keys}", "--key-type", "ecdsa", "--expires", "timestamp=2d,targets=30d"},
			[]string{"initialized trust repository", "ecdsa keys", "pin " + filepath.Join(vars["repo"], "metadata", "1.root.json")}},
		{[]string{"add", "{reg}/library/alpine:3.20", "--repo", "{repo}", "--insecure"},
			[]string{"added {reg}/library/alpine:3.20 to role targets: sha256:" + alpineHex, "application/vnd.oci.image.manifest.v1+json", "staged"}},
		{[]string{"add", "--insecure", "--repo={repo}", "{reg}/library/alpine:3.19"},
			[]string{"added {reg}/library/alpine:3.19"}},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--insecure", "--name", "example.com/team/app", "--custom", "owner=team"},
			[]string{"added example.com/team/app:1 to role targets: sha256:" + appHex}},
		{[]string{"delegate", "--repo", "{repo}", "--keys", "{keys}", "--role", "acme", "--paths", "{reg}/acme/*", "--key-type", "ed25519"},
			[]string{"delegated {reg}/acme/* from targets to role acme (1-of-1 ed25519 keys in " + filepath.Join(vars["keys"], "acme") + ")"}},
		{[]string{"add", "{reg}/acme/web:2", "--repo", "{repo}", "--insecure"},
			[]string{"added {reg}/acme/web:2 to role acme: sha256:" + webHex}},
		{[]string{"list", "--repo", "{repo}"},
			[]string{"acme", "{reg}/acme/web:2", "sha256:" + webHex, "4 target(s) in 2 role(s)", "unpublished changes in targets, acme"}},
		{[]string{"publish", "--repo", "{repo}", "--keys", "{keys}"},
			[]string{"published", "acme v1", "targets v2", "snapshot v2", "timestamp v2"}},
		{[]string{"timestamp", "--repo", "{repo}", "--keys", "{keys}"},
			[]string{"re-signed timestamp v3 for snapshot v2"}},
		{[]string{"remove", "{reg}/library/alpine:3.19", "--repo", "{repo}", "--keys", "{keys}", "--publish"},
			[]string{"removed 1 target(s) from role(s) targets", "published", "targets v3", "snapshot v3", "timestamp v4"}},
		{[]string{"list", "--repo", "{repo}"},
			[]string{"3 target(s) in 2 role(s)", "all published"}},
	}
	for _, st := range steps {
		out, errOut, err := runTrustArgs(t, vars, st.args...)
		if err != nil {
			t.Fatalf("trust %s: %v\n%s", strings.Join(st.args, " "), err, errOut)
		}
		for _, w := range st.want {
			w = strings.ReplaceAll(w, "{reg}", reg.Host)
			if !strings.Contains(out, w) {
				t.Errorf("trust %s: output lacks %q:\n%s", strings.Join(st.args, " "), w, out)
			}
		}
		if st.args[0] != "list" && strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("trust %s: want a one-line summary, got:\n%s", st.args[0], out)
		}
	}

	// What a go-tuf client pinned to 1.root.json gets over HTTP.
	up := refreshedUpdater(t, vars["repo"])
	for _, tc := range []struct {
		name      string
		sha       string
		length    int64
		mediaType string
	}{
		{reg.Host + "/library/alpine:3.20", alpineHex, alpineLen, string(types.OCIManifestSchema1)},
		{reg.Host + "/acme/web:2", webHex, webLen, string(types.OCIManifestSchema1)},
	} {
		tf, err := up.GetTargetInfo(tc.name)
		if err != nil {
			t.Fatalf("go-tuf: %s: %v", tc.name, err)
		}
		var custom map[string]string
		if tf.Custom != nil {
			_ = json.Unmarshal(*tf.Custom, &custom)
		}
		if tf.Hashes["sha256"].String() != tc.sha || tf.Length != tc.length || custom["mediaType"] != tc.mediaType {
			t.Errorf("%s: target sha256 %s length %d custom %v; want the manifest's %s, %d, %s",
				tc.name, tf.Hashes["sha256"], tf.Length, custom, tc.sha, tc.length, tc.mediaType)
		}
		_, data, err := up.DownloadTarget(tf, filepath.Join(t.TempDir(), "m"), "")
		if err != nil {
			t.Errorf("go-tuf download %s: %v", tc.name, err)
		}
		if tc.sha == alpineHex {
			if raw, _ := alpine.RawManifest(); !bytes.Equal(data, raw) {
				t.Error("downloaded target is not the manifest")
			}
		}
	}
	tf, err := up.GetTargetInfo("example.com/team/app:1")
	if err != nil {
		t.Fatalf("renamed target: %v", err)
	}
	var custom map[string]string
	if tf.Custom == nil || json.Unmarshal(*tf.Custom, &custom) != nil || custom["owner"] != "team" || custom["mediaType"] != string(types.DockerManifestSchema2) {
		t.Errorf("renamed target custom metadata = %v, want owner and mediaType", custom)
	}
	if _, err := up.GetTargetInfo(reg.Host + "/library/alpine:3.19"); err == nil {
		t.Error("removed target still published")
	}
	var acme metadata.Metadata[metadata.TargetsType]
	if _, err := acme.FromFile(filepath.Join(vars["repo"], "metadata", "1.acme.json")); err != nil || acme.Signed.Targets[reg.Host+"/acme/web:2"] == nil {
		t.Errorf("acme/web:2 is not signed by the delegated role: %v", err)
	}
}

// refreshedUpdater is go-tuf's updater pinned to repoDir's 1.root.json,
// refreshed over HTTP from a plain static file server.
func refreshedUpdater(t *testing.T, repoDir string) *updater.Updater {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(repoDir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(srv.URL+"/metadata", root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
	cfg.RemoteTargetsURL = srv.URL + "/targets"
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh: %v", err)
	}
	return up
}

func TestTrustErrors(t *testing.T) {
	reg := testenv.NewRegistry(t)
	reg.PushRandomImage(t, "team/app:1", 256, 1, types.OCIManifestSchema1)
	base := t.TempDir()
	vars := map[string]string{"repo": filepath.Join(base, "repo"), "keys": filepath.Join(base, "keys"), "reg": reg.Host,
		"empty": t.TempDir()}
	if _, errOut, err := runTrustArgs(t, vars, "init", "--repo", "{repo}", "--keys", "{keys}"); err != nil {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	if err := os.WriteFile(filepath.Join(vars["empty"], "bad.jsonl"), []byte("# one bad line\n{\"name\":\"x:1\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"init", "--repo", "{empty}/r"}, `required flag(s) "keys" not set`},
		{[]string{"init", "--repo", "{empty}/r", "--keys", "{empty}/k", "--expires", "timestamp=soon"}, "--expires timestamp"},
		{[]string{"init", "--repo", "{empty}/r", "--keys", "{empty}/k", "--expires", "timestamp=0d"}, "must be positive"},
		{[]string{"init", "--repo", "{empty}/r", "--keys", "{empty}/k", "--key-type", "dsa"}, "unknown key type"},
		{[]string{"init", "--repo", "{repo}", "--keys", "{keys}"}, "already a trust repository"},
		{[]string{"add", "--repo", "{repo}"}, "accepts 1 arg(s), received 0"},
		{[]string{"add", "{reg}/team/app@sha256:" + strings.Repeat("a", 64), "--repo", "{repo}"}, "names no tag"},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{empty}", "--insecure"}, "not a trust repository"},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--publish"}, "--publish needs --keys"},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--insecure", "--custom", "mediaType=x"}, "cannot be overridden"},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--insecure", "--custom", "novalue"}, "must be formatted as key=value"},
		{[]string{"add", "{reg}/team/missing:1", "--repo", "{repo}", "--insecure"}, "resolve"},
		{[]string{"remove", "--repo", "{repo}"}, "requires at least 1 arg(s), only received 0"},
		{[]string{"remove", "nothing:1", "--repo", "{repo}"}, "no role lists this target"},
		{[]string{"delegate", "--repo", "{repo}", "--keys", "{keys}", "--role", "x"}, `required flag(s) "paths" not set`},
		{[]string{"delegate", "--repo", "{repo}", "--keys", "{keys}", "--role", "x", "--paths", "a/*", "--pubkey", "{empty}/none.pub"}, "read public key"},
		{[]string{"init", "--repo", "{empty}/r", "--keys", "{empty}/k", "--hash-bins", "1000"}, "1000 bins: want a power of two"},
		{[]string{"delegate", "--repo", "{repo}", "--keys", "{keys}", "--hash-bins", "8", "--role", "x"}, "none of the others can be"},
		{[]string{"add-targets", "{empty}/none.jsonl", "--repo", "{repo}"}, "no such file"},
		{[]string{"add-targets", "{empty}/bad.jsonl", "--repo", "{repo}"}, "target list line 2: x:1: no digest"},
		{[]string{"add-targets", "-", "--repo", "{repo}"}, "-: no targets in the list"},
		{[]string{"publish", "--repo", "{repo}"}, `required flag(s) "keys" not set`},
		{[]string{"publish", "--repo", "{repo}", "--keys", "{keys}", "extra"}, `unknown command "extra" for "trustproxy trust publish"`},
		{[]string{"rotate", "--repo", "{repo}", "--keys", "{keys}", "--role", "acme"}, "not a top-level role"},
		{[]string{"list"}, `required flag(s) "repo" not set`},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--insecure", "--in-toto-links", "{empty}"}, "need an in-toto layout"},
		{[]string{"add", "{reg}/team/app:1", "--repo", "{repo}", "--insecure", "--bundle-index"}, "is not a CNAB bundle"},
	} {
		_, _, err := runTrustArgs(t, vars, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("trust %s: err = %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
