package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// replicaEnv is set in a child process started by startReplica: the test
// binary then runs `trustproxy serve --config <value>` and nothing else, so
// the test can SIGKILL a real trustproxy process.
const replicaEnv = "TRUSTPROXY_TEST_SERVE_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(replicaEnv); cfg != "" {
		os.Exit(run(context.Background(), []string{"serve", "--config", cfg}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type replica struct {
	url string
	cmd *exec.Cmd
	log string
}

// startReplica runs trustproxy serve in a child process with the given
// storage section and waits until /readyz answers 200.
func startReplica(t *testing.T, name, upstreamURL, storage string) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`listen: %s
log: {level: warn}
storage:
%s
upstreams:
  - {name: upstream, url: %q, default: true}
policy:
  rules:
    - {name: team, match: "upstream/team/**", mode: allow}
`, addr, storage, upstreamURL)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{url: "http://" + addr, log: filepath.Join(dir, name+".log")}
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	r.cmd = exec.Command(os.Args[0], "-test.run=^$")
	r.cmd.Env = append(os.Environ(), replicaEnv+"="+path)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("replica %s log:\n%s", name, b)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(r.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("replica %s not ready: %v\n%s", name, err, b)
		}
	}
}

// getDigest GETs url and returns the status and the sha256 of the body.
func getDigest(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// throttled makes the upstream send blob bodies slowly (so a replica can be
// killed mid-download) and counts blob GETs and bytes per digest.
type throttled struct {
	gets  sync.Map // digest → *atomic.Int64
	bytes atomic.Int64
}

func (th *throttled) count(dg string) int64 {
	v, _ := th.gets.LoadOrStore(dg, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (th *throttled) middleware(w http.ResponseWriter, r *http.Request, next http.Handler) {
	i := strings.Index(r.URL.Path, "/blobs/sha256:")
	if i < 0 || r.Method != http.MethodGet {
		next.ServeHTTP(w, r)
		return
	}
	dg := r.URL.Path[i+len("/blobs/"):]
	v, _ := th.gets.LoadOrStore(dg, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	next.ServeHTTP(&slowWriter{ResponseWriter: w, th: th}, r)
}

type slowWriter struct {
	http.ResponseWriter
	th *throttled
}

func (s *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 256<<10)
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		s.th.bytes.Add(int64(m))
		if err != nil {
			return n, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[k:]
		time.Sleep(40 * time.Millisecond)
	}
	return n, nil
}

// Replicas on one S3 bucket (versitygw): a replica SIGKILLed in the middle
// of a download leaves no partial object, and another replica, which never
// saw the manifest, completes the pull; three replicas pulling one cold blob
// at once cause exactly one upstream download.
func TestReplicasOnS3(t *testing.T) {
	gw := testenv.NewVersityGW(t)
	params := gw.NewBucket(t, "replicas")
	storage := fmt.Sprintf("  downloadlease: 2s\n  s3: {accesskey: %s, secretkey: %s, region: us-east-1, regionendpoint: %q, forcepathstyle: true, bucket: replicas, secure: false, rootdirectory: /trustproxy}",
		gw.AccessKey, gw.SecretKey, gw.Endpoint)
	up := testenv.NewRegistry(t)
	th := &throttled{}
	up.SetMiddleware(th.middleware)
	layerOf := func(repoTag string) (string, string) {
		img := up.PushRandomImage(t, repoTag, 12<<20, 1, types.OCIManifestSchema1)
		md, _ := img.Digest()
		ls, _ := img.Layers()
		ld, _ := ls[0].Digest()
		return md.String(), ld.String()
	}
	_, killedLayer := layerOf("team/killed:v1")
	_, sharedLayer := layerOf("team/shared:v1")

	a := startReplica(t, "a", up.URL, storage)
	b := startReplica(t, "b", up.URL, storage)
	c := startReplica(t, "c", up.URL, storage)

	// Kill a mid-download.
	if code, _, err := getDigest(a.url + "/v2/team/killed/manifests/v1"); code != 200 {
		t.Fatalf("manifest through a: %d %v", code, err)
	}
	go func() { _, _, _ = getDigest(a.url + "/v2/team/killed/blobs/" + killedLayer) }()
	for deadline := time.Now().Add(20 * time.Second); th.bytes.Load() < 2<<20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the upstream download through a never started")
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	drv, err := factory.Create(context.Background(), "s3", params)
	if err != nil {
		t.Fatal(err)
	}
	enc := strings.TrimPrefix(killedLayer, "sha256:")
	dataPath := "/blobs/sha256/" + enc[:2] + "/" + enc + "/data"
	if _, err := drv.Stat(context.Background(), dataPath); !isNotFound(err) {
		t.Fatalf("after the kill, %s: %v (want not found: no partial object visible)", dataPath, err)
	}
	code, got, err := getDigest(b.url + "/v2/team/killed/blobs/" + killedLayer)
	if code != 200 || got != killedLayer || err != nil {
		t.Fatalf("pull through b after a was killed: %d %s %v", code, got, err)
	}
	if n := th.count(killedLayer); n != 2 {
		t.Fatalf("%d upstream downloads of the killed blob, want 2 (a's cut one and b's)", n)
	}

	// Three replicas (a restarted) pull one cold blob at once.
	a = startReplica(t, "a2", up.URL, storage)
	if code, _, err := getDigest(b.url + "/v2/team/shared/manifests/v1"); code != 200 {
		t.Fatalf("manifest through b: %d %v", code, err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 30)
	for i := range 30 {
		r := []*replica{a, b, c}[i%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, got, err := getDigest(r.url + "/v2/team/shared/blobs/" + sharedLayer)
			if code != 200 || got != sharedLayer || err != nil {
				errs <- fmt.Sprintf("%s: %d %s %v", r.url, code, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := th.count(sharedLayer); n != 1 {
		t.Fatalf("%d upstream downloads for 30 concurrent pulls through 3 replicas, want 1", n)
	}
	// What one replica cached, another serves with no upstream request: c
	// never pulled the blob b completed after a was killed.
	if code, got, err := getDigest(c.url + "/v2/team/killed/blobs/" + killedLayer); code != 200 || got != killedLayer || err != nil {
		t.Fatalf("pull through c of what b cached: %d %s %v", code, got, err)
	}
	if n := th.count(killedLayer); n != 2 {
		t.Fatalf("%d upstream downloads of the blob b cached, want still 2", n)
	}
}

func isNotFound(err error) bool {
	_, ok := err.(storagedriver.PathNotFoundError)
	return ok
}
