package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// BenchmarkMirror measures export and import side by side with skopeo
// moving the same content the same way (README: Performance):
//
//	export                    registry → trustproxy (verifying, cold cache) → OCI layout
//	export-cli                the same, run as the trustproxy binary (a process, as skopeo is)
//	export-cli-tar            the same into a tar file (blobs written one after another)
//	export-warm               the same, from a proxy that has the image cached
//	skopeo-to-oci             registry → OCI layout
//	import                    OCI layout → verify everything → filesystem cache
//	skopeo-oci-to-registry    OCI layout → a local registry (filesystem)
//
// One image of 4 × 32 MiB layers. B/op shows that memory does not grow
// with the content (streaming).
func BenchmarkMirror(b *testing.B) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		testenv.SkipOrFail(b, "skopeo is not installed")
	}
	m := &mirrorSides{dir: b.TempDir(), up: testenv.NewRegistry(b)}
	m.repo, m.keys = filepath.Join(m.dir, "repo"), filepath.Join(m.dir, "keys")
	img := m.up.PushRandomImage(b, "acme/big:1.0", 32<<20, 4, types.OCIManifestSchema1)
	var size int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		size += n
	}
	runTrustB(b, "init", "--repo", m.repo, "--keys", m.keys)
	runTrustB(b, "add", m.up.Host+"/acme/big:1.0", "--repo", m.repo, "--keys", m.keys, "--insecure", "--name", "up/acme/big", "--publish")
	m.online = onlineConfigB(b, m)
	exported := filepath.Join(m.dir, "export")
	if err := runCommand(b.Context(), "mirror", []string{"export", "--config", m.online, "--out", exported, "up/acme/big:1.0"}, os.Stderr, os.Stderr); err != nil {
		b.Fatal(err)
	}

	b.Run("export", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			out, cfg := filepath.Join(b.TempDir(), "x"), onlineConfigB(b, m) // a cold proxy cache each time
			b.StartTimer()
			if err := runCommand(b.Context(), "mirror", []string{"export", "--config", cfg, "--out", out, "up/acme/big:1.0"}, os.Stderr, os.Stderr); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same cold export from the trustproxy binary, a process of its
	// own as skopeo is (in-process, the export shares the benchmark's
	// process, and its two Ps, with the upstream registry).
	// cpu-s/op is the child's user+system CPU: unlike time, it hardly
	// depends on how loaded the machine is. MIRROR_BENCH_BIN names another
	// trustproxy binary to measure (an older build, to compare).
	bin := os.Getenv("MIRROR_BENCH_BIN")
	if bin == "" {
		bin = filepath.Join(m.dir, "trustproxy")
		if o, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, o)
		}
	}
	b.Run("export-cli", func(b *testing.B) { benchCLIExport(b, m, bin, size, "--out", "x") })
	// A tar stream takes blobs one after another (the next ones are opened,
	// and so fetched by the proxy, ahead).
	b.Run("export-cli-tar", func(b *testing.B) { benchCLIExport(b, m, bin, size, "--tar", "x.tar") })
	b.Run("export-warm", func(b *testing.B) { // from a proxy that already served (and cached) the image
		b.SetBytes(size)
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "x")
			if err := runCommand(b.Context(), "mirror", []string{"export", "--config", m.online, "--out", out, "up/acme/big:1.0"}, os.Stderr, os.Stderr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("skopeo-to-oci", func(b *testing.B) {
		b.SetBytes(size)
		var cpu time.Duration
		for b.Loop() {
			out := filepath.Join(b.TempDir(), "x")
			c := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+m.up.Host+"/acme/big:1.0", "oci:"+out+":big")
			if o, err := c.CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, o)
			}
			cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		}
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	})
	b.Run("import", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			cfg, _ := offlineConfigB(b, m)
			b.StartTimer()
			if err := runCommand(b.Context(), "mirror", []string{"import", "--config", cfg, exported}, os.Stderr, os.Stderr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("skopeo-oci-to-registry", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			dst := testenv.NewRegistryWithStorage(b, configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": b.TempDir()}})
			b.StartTimer()
			if o, err := exec.Command("skopeo", "copy", "--dest-tls-verify=false", "oci:"+exported+":up/acme/big:1.0", "docker://"+dst.Host+"/acme/big:1.0").CombinedOutput(); err != nil {
				b.Fatalf("%v\n%s", err, o)
			}
		}
	})
}

// benchCLIExport times cold exports by the trustproxy binary bin into
// flag (--out or --tar) name, and reports the child's CPU.
func benchCLIExport(b *testing.B, m *mirrorSides, bin string, size int64, flag, name string) {
	b.SetBytes(size)
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		out, cfg := filepath.Join(b.TempDir(), name), onlineConfigB(b, m)
		b.StartTimer()
		c := exec.Command(bin, "mirror", "export", "--config", cfg, flag, out, "up/acme/big:1.0")
		if o, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, o)
		}
		cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

func runTrustB(b *testing.B, args ...string) {
	b.Helper()
	if err := runTrust(b.Context(), args, os.Stderr, os.Stderr); err != nil {
		b.Fatal(err)
	}
}

func onlineConfigB(b *testing.B, m *mirrorSides) string {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "online.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams: [{name: up, url: %q}]
trust: {corp: {metadata: %q, root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(dir, "cache"), filepath.Join(dir, "state"), m.up.URL, filepath.Join(m.repo, "metadata"), m.rootPath())), 0o644)
	return cfg
}

func offlineConfigB(b *testing.B, m *mirrorSides) (string, string) {
	root := b.TempDir()
	cfg := filepath.Join(root, "offline.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
storage: {filesystem: {rootdirectory: %q}}
state: %q
upstreams: [{name: up, url: "http://192.0.2.1:9", offline: true}]
trust: {corp: {metadata: %q, root: %q}}
policy: {rules: [{name: acme, match: "up/acme/**", mode: enforce, trust: corp}]}
`, filepath.Join(root, "cache"), filepath.Join(root, "state"), filepath.Join(root, "tuf", "metadata"), m.rootPath())), 0o644)
	return cfg, root
}
