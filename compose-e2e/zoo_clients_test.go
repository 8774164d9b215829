package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

const (
	zooUpstream = "zoo"
	zooUser     = "puller"
	zooPass     = "s3cret"
	// The Docker engine will not pull anonymously from a registry whose
	// /v2/ asks for Basic (trustproxy does once it has access rules, which
	// upstream credentials require): docker uses a trustproxy user.
	dockerUser, dockerPass = "docker-user", "d0cker"
)

// TestZooClients pulls with the real clients through the trustproxy binary
// in front of an upstream shaped like Docker Hub: a token realm on another
// loopback address (127.0.0.2) that wants the configured credentials, and
// every blob GET answered 307 to a CDN that refuses any Authorization. It
// needs no compose stack: the zoo and trustproxy run on host loopback, which
// the host's Docker engine reaches as an insecure registry (127.0.0.0/8).
// Each client pulls an image of its own, so each pull's blobs cross the CDN.
func TestZooClients(t *testing.T) {
	needTool(t, "skopeo", "podman", "ctr", "containerd", "docker")
	needRoot(t)
	issuer := testenv.NewTokenIssuer(t, "127.0.0.2:0")
	issuer.Username, issuer.Password = zooUser, zooPass
	zoo := testenv.NewZoo(t, testenv.ZooOptions{CDNAddr: "127.0.0.1:0", Token: issuer})

	clients := []string{"skopeo", "podman", "ctr", "docker"}
	dir := shortTempDir(t, "zoo")
	bin := filepath.Join(dir, "trustproxy")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/trustproxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "keys")
	mustTool(t, nil, bin, "trust", "init", "--repo", repo, "--keys", keys)
	signed := map[string]string{} // client → digest of its signed image
	layers := map[string][]string{}
	// acme/probe tells when trustproxy is ready; acme/late is signed but
	// pulled by nobody before the upstream starts rate-limiting.
	for _, c := range append(clients, "probe", "late") {
		signed[c], layers[c] = zooPush(t, zoo.Seed, "acme/"+c+":1.0")
		// The seed registry shares the zoo's storage without auth: the
		// publisher reads the digest there and names it as the zoo's.
		mustTool(t, nil, bin, "trust", "add", zoo.Seed.Host+"/acme/"+c+":1.0", "--insecure",
			"--name", zooUpstream+"/acme/"+c, "--repo", repo)
	}
	zooPush(t, zoo.Seed, "acme/unsigned:1.0")
	mustTool(t, nil, bin, "trust", "publish", "--repo", repo, "--keys", keys)

	proxy := startZooProxy(t, dir, bin, zoo.URL, repo, "probe")
	ref := func(c string) string { return proxy + "/" + zooUpstream + "/acme/" + c + ":1.0" }
	denial := "denied: trustproxy: " + zooUpstream + "/acme/unsigned:1.0"

	t.Run("skopeo", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		mustTool(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+ref("skopeo"), "oci:"+layout+":signed")
		b, err := os.ReadFile(filepath.Join(layout, "index.json"))
		if err != nil || !strings.Contains(string(b), signed["skopeo"]) {
			t.Fatalf("OCI layout index %s (%v); want the signed %s", b, err, signed["skopeo"])
		}
		out, err := tool(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+ref("unsigned"), "oci:"+layout+":unsigned")
		wantRefused(t, out, err, denial)
	})
	t.Run("podman", func(t *testing.T) {
		pdir := shortTempDir(t, "podman")
		env := []string{"CONTAINERS_REGISTRIES_CONF=" + writeRegistriesConf(t, proxy)}
		podman := func(args ...string) []string { return podmanArgs(pdir, args...) }
		mustTool(t, env, "podman", podman("pull", "--tls-verify=false", ref("podman"))...)
		d := strings.TrimSpace(mustTool(t, env, "podman", podman("image", "inspect", "--format", "{{.Digest}}", ref("podman"))...))
		if d != signed["podman"] {
			t.Fatalf("digest %s; want the signed %s", d, signed["podman"])
		}
		out, err := tool(t, env, "podman", podman("pull", "--tls-verify=false", ref("unsigned"))...)
		wantRefused(t, out, err, denial)
	})
	t.Run("ctr", func(t *testing.T) {
		sock := startContainerd(t)
		ctr := func(args ...string) []string { return append([]string{"-a", sock, "-n", "zoo"}, args...) }
		mustTool(t, nil, "ctr", ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref("ctr"))...)
		if d := ctrDigest(t, sock, "zoo", ref("ctr")); d != signed["ctr"] {
			t.Fatalf("digest %s; want the signed %s", d, signed["ctr"])
		}
		// containerd resolves with HEAD, whose 403 has no body.
		out, err := tool(t, nil, "ctr", ctr("images", "pull", "--plain-http", "--snapshotter", "native", ref("unsigned"))...)
		wantRefused(t, out, err, "403 Forbidden")
	})
	t.Run("docker", func(t *testing.T) {
		env := zooDockerPull(t, proxy, ref("docker"), signed["docker"])
		out, err := tool(t, env, "docker", "pull", ref("unsigned"))
		wantRefused(t, out, err, denial)
	})

	// The CDN's own log: every client's layers were served from it, and no
	// request reaching it carried a credential.
	cdn := zoo.CDN.Log.Entries()
	for _, e := range cdn {
		if e.HasCredentials() {
			t.Errorf("the CDN received credentials: %s %s Authorization=%q Cookie=%q", e.Method, e.Path, e.Authorization, e.Cookie)
		}
	}
	for _, c := range clients {
		for _, hex := range layers[c] {
			if !cdnServed(cdn, hex) {
				t.Errorf("%s: layer %s was not served by the CDN", c, hex)
			}
		}
	}
	if issuer.Issued() == 0 {
		t.Fatal("the token issuer issued no token")
	}
	for _, e := range issuer.Log.Entries() {
		if !strings.HasPrefix(e.Authorization, "Basic ") {
			t.Errorf("token request without the configured credentials: %s %s", e.Method, e.Path)
		}
	}
	if t.Failed() {
		return
	}

	// The upstream now rate-limits every request, as Docker Hub does when a
	// pull quota is spent: each client pulls its signed image again, served
	// from what trustproxy verified and cached with no upstream answer
	// needed; a signed image nobody pulled before gets the 429 passed on.
	zoo.SetMiddleware(func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit reached"}]}`))
	})
	t.Cleanup(func() { zoo.SetMiddleware(nil) })
	before := zoo.Requests()
	t.Run("rate-limited upstream", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		mustTool(t, nil, "skopeo", "copy", "--src-tls-verify=false", "docker://"+ref("skopeo"), "oci:"+layout+":signed")
		// Clients honour Retry-After by waiting and retrying (skopeo for
		// minutes), so the pass-through is checked on the wire.
		late := "http://" + proxy + "/v2/" + zooUpstream + "/acme/late/manifests/1.0"
		resp, err := http.Get(late)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "TOOMANYREQUESTS") {
			t.Errorf("GET %s while the upstream rate-limits: %s Retry-After=%q %s; want 429 TOOMANYREQUESTS with Retry-After",
				late, resp.Status, resp.Header.Get("Retry-After"), body)
		}

		pdir := shortTempDir(t, "podman")
		env := []string{"CONTAINERS_REGISTRIES_CONF=" + writeRegistriesConf(t, proxy)}
		mustTool(t, env, "podman", podmanArgs(pdir, "pull", "--tls-verify=false", ref("podman"))...)
		if d := strings.TrimSpace(mustTool(t, env, "podman", podmanArgs(pdir, "image", "inspect", "--format", "{{.Digest}}", ref("podman"))...)); d != signed["podman"] {
			t.Errorf("podman: digest %s; want the signed %s", d, signed["podman"])
		}

		sock := startContainerd(t)
		mustTool(t, nil, "ctr", "-a", sock, "-n", "zoo429", "images", "pull", "--plain-http", "--snapshotter", "native", ref("ctr"))
		if d := ctrDigest(t, sock, "zoo429", ref("ctr")); d != signed["ctr"] {
			t.Errorf("ctr: digest %s; want the signed %s", d, signed["ctr"])
		}

		zooDockerPull(t, proxy, ref("docker"), signed["docker"])
	})
	// The four clients' pulls needed no upstream answer; only acme/late asked.
	if n := zoo.Requests() - before; n != 1 {
		t.Errorf("%d upstream requests while rate-limited; want 1 (acme/late's manifest)", n)
	}
}

// zooDockerPull pulls ref with the host's Docker engine as the trustproxy
// user dockerUser, checks that docker recorded the signed digest, removes
// the image when the test ends, and returns the environment of that
// client configuration.
func zooDockerPull(t *testing.T, proxy, ref, signed string) []string {
	t.Helper()
	t.Cleanup(func() {
		if out, err := toolCtx(context.Background(), nil, "docker", "image", "rm", "-f", ref); err != nil {
			t.Errorf("remove the pulled image: %v\n%s", err, out)
		}
	})
	// A client config of its own (not ~/.docker): the CLI hands these
	// credentials to the engine with the pull, as after `docker login`.
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(dockerUser + ":" + dockerPass))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+proxy+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + cfg}
	mustTool(t, env, "docker", "pull", ref)
	wantRepoDigest(t, env, ref, strings.TrimSuffix(ref, ":1.0"), signed)
	return env
}

// zooPush pushes a small image for this machine's platform and returns its
// digest and its layers' hex digests.
func zooPush(t *testing.T, r *testenv.Registry, repoTag string) (string, []string) {
	t.Helper()
	img, err := platformImage(runtime.GOARCH, types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.Ref(t, repoTag), img); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	d, _ := img.Digest()
	ls, _ := img.Layers()
	var hexes []string
	for _, l := range ls {
		ld, _ := l.Digest()
		hexes = append(hexes, ld.Hex)
	}
	return d.String(), hexes
}

// cdnServed reports whether a GET for the blob with this hex digest reached
// the CDN (distribution's redirect names the blob's path in its storage).
func cdnServed(log []testenv.HostLogEntry, hex string) bool {
	for _, e := range log {
		if e.Method == http.MethodGet && strings.Contains(e.Path, "/"+hex+"/") {
			return true
		}
	}
	return false
}

// startZooProxy runs `trustproxy serve` with the zoo as its upstream (with
// the credentials the realm wants) and acme/** enforced against the TUF
// repository (open access; docker pulls as dockerUser), and returns its
// host:port once the signed acme/<probeRepo>:1.0 resolves.
func startZooProxy(t *testing.T, dir, bin, upstream, repo, probeRepo string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	htpasswd := testenv.WriteHtpasswd(t, dockerUser, dockerPass)
	config := fmt.Sprintf(`listen: %q
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams:
  - {name: %s, url: %q, default: true, auth: {username: %s, password: %s}}
trust:
  corp: {metadata: %q, root: %q}
policy:
  rules:
    - {name: acme, match: "%s/acme/**", mode: enforce, trust: corp}
auth: {htpasswd: %q}
access: [{match: "**", allow: [anonymous, authenticated]}]
`, addr, filepath.Join(dir, "cache"), filepath.Join(dir, "state"), zooUpstream, upstream, zooUser, zooPass,
		filepath.Join(repo, "metadata"), filepath.Join(repo, "metadata", "1.root.json"), zooUpstream, htpasswd)
	path := filepath.Join(dir, "trustproxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, bin, nil, "serve", "--config", path)
	// Ready when a signed tag resolves: the listener is up and the trust
	// data (refreshed in the background) vouches for it.
	probe := "http://" + addr + "/v2/" + zooUpstream + "/acme/" + probeRepo + "/manifests/1.0"
	d.waitFor(t, "a signed tag", func() error {
		resp, err := http.Head(probe)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HEAD %s: %s", probe, resp.Status)
		}
		return nil
	})
	return addr
}
