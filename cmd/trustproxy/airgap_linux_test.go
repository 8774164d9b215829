package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// airgapNS is a network namespace the test creates, with loopback up.
type airgapNS string

func newAirgapNS(t *testing.T, role string) airgapNS {
	t.Helper()
	n := airgapNS(fmt.Sprintf("tpmirror-%s-%d", role, os.Getpid()%100000))
	mustRun(t, "ip", "netns", "add", string(n))
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(n)).Run() })
	mustRun(t, "ip", "-n", string(n), "link", "set", "lo", "up")
	return n
}

// cmd runs name inside the namespace; nsenter execs it, so the PID is
// name's own.
func (n airgapNS) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + string(n), name}, args...)...)
}

func (n airgapNS) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := n.cmd(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}

// start runs a server inside the namespace until the test ends.
func (n airgapNS) start(t *testing.T, logName string, name string, args ...string) {
	t.Helper()
	c := n.cmd(context.Background(), name, args...)
	f, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout, c.Stderr = f, f
	if err := c.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Process.Kill()
		_ = c.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s log:\n%s", logName, b)
		}
	})
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, what string, ok func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = ok(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// TestAirGapAcrossNetworkNamespaces: the online side (registry, TUF
// server, export) and the offline side (import, proxy, clients) live in
// network namespaces of their own; the offline one has no route to the
// online one. Only the export file crosses.
func TestAirGapAcrossNetworkNamespaces(t *testing.T) {
	for _, tool := range []string{"ip", "nsenter", "skopeo", "registry", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, tool+" is not installed")
		}
	}
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(t, "creating network namespaces needs root")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "trustproxy")
	mustRun(t, "go", "build", "-o", bin, ".")

	on, off := newAirgapNS(t, "on"), newAirgapNS(t, "off")
	// A veth from the test's namespace to the online side, to push and
	// sign from here; the offline side gets no link at all.
	sub := fmt.Sprintf("10.%d.%d", 200+os.Getpid()%50, os.Getpid()/50%250)
	host, peer := fmt.Sprintf("tpmh%d", os.Getpid()%100000), fmt.Sprintf("tpmo%d", os.Getpid()%100000)
	mustRun(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	mustRun(t, "ip", "link", "set", peer, "netns", string(on))
	mustRun(t, "ip", "addr", "add", sub+".1/30", "dev", host)
	mustRun(t, "ip", "link", "set", host, "up")
	mustRun(t, "ip", "-n", string(on), "addr", "add", sub+".2/30", "dev", peer)
	mustRun(t, "ip", "-n", string(on), "link", "set", peer, "up")

	regCfg := filepath.Join(dir, "registry.yml")
	writeFile(t, regCfg, fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: \"0.0.0.0:5000\"}\n", filepath.Join(dir, "registry")))
	on.start(t, "registry.log", "registry", "serve", regCfg)
	regURL := "http://" + sub + ".2:5000"
	waitFor(t, "registry on the online side", func() error {
		resp, err := http.Get(regURL + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	up := &testenv.Registry{URL: regURL, Host: sub + ".2:5000"}
	img := up.PushRandomImage(t, "acme/app:1.0", 1<<20, 3, types.OCIManifestSchema1)
	up.PushRandomImage(t, "acme/unsigned:1.0", 1024, 1, types.OCIManifestSchema1)
	want, _ := img.Digest()
	sig := up.PushArtifact(t, "acme/app", up.Descriptor(t, "acme/app:1.0"), attSig, `{"signature":"over the gap"}`)

	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "keys")
	m := &mirrorSides{repo: repo, keys: keys}
	m.trust(t, "init", "--repo", repo, "--keys", keys)
	m.trust(t, "add", up.Host+"/acme/app:1.0", "--repo", repo, "--keys", keys, "--insecure", "--name", "up/acme/app", "--publish")
	on.start(t, "tuf.log", "python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", repo)

	online := filepath.Join(dir, "online.yaml")
	writeFile(t, online, fmt.Sprintf(`
storage: {inmemory: {}}
state: %q
upstreams: [{name: up, url: "http://127.0.0.1:5000"}]
trust: {corp: {metadata: "http://127.0.0.1:8080/metadata", root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(dir, "online-state"), filepath.Join(repo, "metadata", "1.root.json")))
	exported := filepath.Join(dir, "export.tar")
	waitFor(t, "export on the online side", func() error {
		if out, err := on.run(t, bin, "mirror", "export", "--config", online, "--tar", exported, "up/acme/app:1.0"); err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	})

	// The offline side: its own directory, the root pinned from a copy,
	// and no route to the online side.
	offDir := filepath.Join(dir, "offline")
	os.MkdirAll(offDir, 0o755)
	mustRun(t, "cp", exported, filepath.Join(offDir, "export.tar"))
	mustRun(t, "cp", filepath.Join(repo, "metadata", "1.root.json"), filepath.Join(offDir, "root.json"))
	if out, err := off.run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+up.Host+"/acme/app:1.0"); err == nil {
		t.Fatalf("the offline side reached the online registry:\n%s", out)
	}
	offline := filepath.Join(offDir, "offline.yaml")
	writeFile(t, offline, fmt.Sprintf(`
listen: "127.0.0.1:5001"
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams: [{name: up, url: %q, offline: true}]
trust: {corp: {metadata: %q, root: %q, refresh: 1s}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(offDir, "cache"), filepath.Join(offDir, "state"), regURL, filepath.Join(offDir, "tuf", "metadata"), filepath.Join(offDir, "root.json")))
	if out, err := off.run(t, bin, "mirror", "import", "--config", offline, filepath.Join(offDir, "export.tar")); err != nil ||
		!strings.Contains(out, "imported 1 references") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	off.start(t, "proxy.log", bin, "serve", "--config", offline)

	var raw string
	waitFor(t, "skopeo through the offline proxy", func() error {
		out, err := off.run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://127.0.0.1:5001/up/acme/app:1.0")
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		raw = out
		return nil
	})
	sum := sha256.Sum256([]byte(raw))
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want.String() {
		t.Fatalf("the offline proxy served %s, the trust data vouches for %s", got, want)
	}
	if out, err := off.run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://127.0.0.1:5001/up/acme/app:1.0",
		"oci:"+filepath.Join(offDir, "pulled")+":app"); err != nil {
		t.Fatalf("skopeo copy through the offline proxy: %v\n%s", err, out)
	}
	out, err := off.run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://127.0.0.1:5001/up/acme/unsigned:1.0")
	if err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("an unsigned, unimported image: %v\n%s", err, out)
	}
	// The signature attached upstream crossed with its image: the offline
	// proxy's referrers API lists it.
	if out, err := off.run(t, "python3", "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
		"http://127.0.0.1:5001/v2/up/acme/app/referrers/"+want.String()); err != nil || !strings.Contains(out, sig.String()) {
		t.Fatalf("referrers through the offline proxy: %v\n%s", err, out)
	}
	airgapThickBundle(t, up, m, off, bin, offline, offDir)
}

// airgapThickBundle carries a CNAB thick bundle (porter archive) and a
// copy of the trust repository across, imports it on the offline side
// while its proxy runs, and pulls the bundle's index and invocation image
// through that proxy.
func airgapThickBundle(t *testing.T, up *testenv.Registry, m *mirrorSides, off airgapNS, bin, offline, offDir string) {
	pb := up.PushBundle(t, "acme/bundle:v1.0", testenv.SampleBundle(), testenv.BundleOCI)
	m.trust(t, "add", up.Host+"/acme/bundle:v1.0", "--repo", m.repo, "--keys", m.keys, "--insecure", "--name", "up/acme/bundle", "--publish")
	archive := filepath.Join(offDir, "bundle.tgz")
	up.PorterArchive(t, pb, archive, nil)
	carried := filepath.Join(offDir, "carried-tuf")
	mustRun(t, "cp", "-a", m.repo, carried)
	if out, err := off.run(t, bin, "mirror", "import", "--config", offline, "--bundle", "up/acme/bundle:v1.0",
		"--trust-dir", "corp="+carried, archive); err != nil || !strings.Contains(out, "imported 1 references") {
		t.Fatalf("thick import: %v\n%s", err, out)
	}
	var raw string
	waitFor(t, "the thick bundle through the offline proxy", func() error {
		out, err := off.run(t, "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://127.0.0.1:5001/up/acme/bundle:v1.0")
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		raw = out
		return nil
	})
	if raw != string(pb.Index) {
		t.Fatalf("the offline proxy served %s for the bundle tag; want the pushed index %s", raw, pb.Index)
	}
	if out, err := off.run(t, "skopeo", "copy", "--src-tls-verify=false", "docker://127.0.0.1:5001/up/acme/bundle@"+pb.Invocation.String(),
		"oci:"+filepath.Join(offDir, "pulled-bundle")+":installer"); err != nil {
		t.Fatalf("skopeo copy of the invocation image through the offline proxy: %v\n%s", err, out)
	}
}
