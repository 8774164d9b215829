//go:build bench

package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// benchEnv is everything a run started: binaries, the upstream, the trust
// repository, and the proxies it starts and stops per scenario.
type benchEnv struct {
	s           Settings
	work        string
	log         io.Writer
	tpBin       string
	regBin      string
	upstream    *server
	upstreamDir string
	trust       *trustRepo // what the proxy instances verify against
	large       *trustRepo // TrustTargets targets: decisions, start-up

	big, image, small *seededImage

	client *http.Client

	mu      sync.Mutex
	servers []*server
	seq     int
}

// newClient is the benchmark client: keep-alive, no transparent gzip, one
// connection per concurrent request.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}
}

func (e *benchEnv) nextDir(prefix string) (string, error) {
	e.mu.Lock()
	e.seq++
	n := e.seq
	e.mu.Unlock()
	dir := filepath.Join(e.work, fmt.Sprintf("%s-%02d", prefix, n))
	return dir, os.MkdirAll(dir, 0o755)
}

func (e *benchEnv) track(s *server) {
	e.mu.Lock()
	e.servers = append(e.servers, s)
	e.mu.Unlock()
}

// stopAll stops every server this run started, by pid.
func (e *benchEnv) stopAll() {
	e.mu.Lock()
	servers := e.servers
	e.servers = nil
	e.mu.Unlock()
	for _, s := range servers {
		s.stop()
	}
}

// discard stops a per-run server and removes its directory.
func (e *benchEnv) discard(s *server) {
	if s == nil {
		return
	}
	s.stop()
	e.client.CloseIdleConnections()
	if !e.s.Keep {
		_ = os.RemoveAll(s.dir)
	}
}

func (e *benchEnv) startUpstream(ctx context.Context) error {
	dir, err := e.nextDir("upstream")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := registryConfig(fsStorage(filepath.Join(dir, "data")), port, "")
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	s, err := startServer(ctx, "upstream", dir, e.regBin, []string{"serve", "config.yml"}, nil, port, "/v2/")
	if err != nil {
		return err
	}
	e.track(s)
	e.upstream, e.upstreamDir = s, dir
	return nil
}

// upstreamBlobFile is where the upstream keeps a blob's bytes (its
// filesystem driver layout): the raw file-server ceiling serves this file.
func (e *benchEnv) upstreamBlobFile(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return filepath.Join(e.upstreamDir, "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// startDistProxy starts distribution in proxy mode (pull-through cache) in
// front of the upstream, with an empty cache.
func (e *benchEnv) startDistProxy(ctx context.Context) (*server, error) {
	return e.startDistProxyOn(ctx, "")
}

// startDistProxyOn is startDistProxy with the storage section given as a
// one-line YAML flow mapping of distribution's storage keys ("": a fresh
// filesystem directory).
func (e *benchEnv) startDistProxyOn(ctx context.Context, storage string) (*server, error) {
	dir, err := e.nextDir("distproxy")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if storage == "" {
		storage = fsStorage(filepath.Join(dir, "data"))
	}
	cfg := registryConfig(storage, port, e.upstream.url)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	s, err := startServer(ctx, "distribution-proxy", dir, e.regBin, []string{"serve", "config.yml"}, nil, port, "/v2/")
	if err != nil {
		return nil, err
	}
	e.track(s)
	return s, nil
}

// startTrustproxy starts trustproxy (enforce mode, every repository of the
// upstream governed by the trust repository tr) with an empty cache.
func (e *benchEnv) startTrustproxy(ctx context.Context, tr *trustRepo) (*server, error) {
	return e.startTrustproxyOn(ctx, tr, "")
}

// startTrustproxyOn is startTrustproxy with the storage driver given as a
// one-line YAML flow mapping ("": a fresh filesystem directory).
func (e *benchEnv) startTrustproxyOn(ctx context.Context, tr *trustRepo, driver string) (*server, error) {
	return e.startTrustproxyWith(ctx, trustLocation{metadata: tr.metadataDir(), root: tr.rootPath()}, driver)
}

// trustLocation is the trust repository trustproxy is configured with:
// metadata (a directory or URL), the pinned root's path, and the state
// directory ("": a fresh one in the instance's directory).
type trustLocation struct{ metadata, root, state string }

func (e *benchEnv) startTrustproxyWith(ctx context.Context, trust trustLocation, driver string) (*server, error) {
	dir, err := e.nextDir("trustproxy")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if driver == "" {
		driver = fsStorage(filepath.Join(dir, "storage"))
	}
	cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
log: {level: info}
storage: {%s, spooldir: %q}
state: %q
upstreams:
  - {name: %s, url: %q, default: true}
trust:
  corp: {metadata: %q, root: %q, refresh: 1h, maxMetadataBytes: %d}
policy:
  rules:
    - {name: bench, match: "%s/**", mode: enforce, trust: corp}
`, port, driver, filepath.Join(dir, "spool"), cmp.Or(trust.state, filepath.Join(dir, "state")),
		upstreamName, e.upstream.url, trust.metadata, trust.root, maxMetadataBytes, upstreamName)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	var env []string
	pprofAddr := ""
	if e.s.ProfileDir != "" {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		env = append(env, "TRUSTPROXY_BENCH_PPROF="+pprofAddr)
	}
	s, err := startServer(ctx, "trustproxy", dir, e.tpBin, []string{"serve", "--config", "config.yaml"}, env, port, "/readyz")
	if err != nil {
		return nil, err
	}
	s.pprof = pprofAddr
	e.track(s)
	return s, nil
}

// profile runs fn under a CPU profile of s (when profiling), written to
// <ProfileDir>/<name>.pprof.
func (e *benchEnv) profile(s *server, name string, fn func() error) error {
	if s.pprof == "" {
		return fn()
	}
	file, _ := filepath.Abs(filepath.Join(e.s.ProfileDir, name+".pprof"))
	if _, err := http.Get("http://" + s.pprof + "/bench/cpu/start?file=" + file); err != nil {
		fmt.Fprintf(e.log, "profile %s: %v\n", name, err)
	}
	err := fn()
	if resp, perr := http.Get("http://" + s.pprof + "/bench/cpu/stop"); perr == nil {
		resp.Body.Close()
	}
	for _, p := range []string{"block", "mutex", "heap"} {
		if resp, perr := http.Get("http://" + s.pprof + "/debug/pprof/" + p); perr == nil {
			if f, ferr := os.Create(filepath.Join(e.s.ProfileDir, name+"."+p+".pprof")); ferr == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
			resp.Body.Close()
		}
	}
	return err
}

var manifestAccept = []string{
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}

// manifestRequest sends one manifest request and checks the answer names
// the expected digest.
func (e *benchEnv) manifestRequest(ctx context.Context, base, repo, ref, method string, want digest.Digest) error {
	req, err := http.NewRequestWithContext(ctx, method, base+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		return err
	}
	for _, a := range manifestAccept {
		req.Header.Add("Accept", a)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s/%s:%s: status %d", method, base, repo, ref, resp.StatusCode)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); want != "" && got != want.String() {
		return fmt.Errorf("%s %s/%s:%s: digest %s, want %s", method, base, repo, ref, got, want)
	}
	return nil
}

// getBlob GETs a blob and reads it to the end. With verify it hashes the
// bytes (that costs client CPU, so timed runs only count them).
func (e *benchEnv) getBlob(ctx context.Context, base, repo, dgst string, size int64, verify bool) (time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/"+repo+"/blobs/"+dgst, nil)
	if err != nil {
		return 0, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("GET %s blob %s: status %d: %s", base, dgst, resp.StatusCode, b)
	}
	var n int64
	if verify {
		h := sha256.New()
		n, err = io.Copy(h, resp.Body)
		if err == nil && fmt.Sprintf("sha256:%x", h.Sum(nil)) != dgst {
			err = fmt.Errorf("GET %s blob %s: wrong bytes", base, dgst)
		}
	} else {
		// A large buffer and a plain writer: io.Discard's own ReadFrom
		// reads 8 KiB at a time, which costs the client (sharing the
		// cores with the servers) four times the syscalls.
		n, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, make([]byte, 256<<10))
	}
	if err != nil {
		return 0, fmt.Errorf("GET %s blob %s after %d bytes: %w", base, dgst, n, err)
	}
	if n != size {
		return 0, fmt.Errorf("GET %s blob %s: %d bytes, want %d", base, dgst, n, size)
	}
	return time.Since(start), nil
}

// rawFileServer serves one file with io.Copy(w, f) (the sendfile path): the
// loopback ceiling for a blob, measured in the same run.
func rawFileServer(path string) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
		_, _ = io.Copy(w, f)
	})}
	go srv.Serve(l)
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// fsStorage is the filesystem driver at dir, as a storage entry.
func fsStorage(dir string) string { return fmt.Sprintf("filesystem: {rootdirectory: %q}", dir) }

// registryConfig is a distribution configuration on loopback; storage is
// the driver entry (fsStorage, s3Storage); with remoteURL it runs in proxy
// (pull-through cache) mode.
func registryConfig(storage string, port int, remoteURL string) string {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage: {%s, delete: {enabled: true}, maintenance: {uploadpurging: {enabled: false}}, redirect: {disable: true}}
http:
  addr: 127.0.0.1:%d
  secret: trustproxy-bench
health:
  storagedriver: {enabled: false}
`, storage, port)
	if remoteURL != "" {
		cfg += "proxy:\n  remoteurl: " + remoteURL + "\n"
	}
	return cfg
}

// startBothProxies starts trustproxy and distribution's proxy side by side
// in front of the upstream; stop discards both.
func (e *benchEnv) startBothProxies(ctx context.Context) (tp, dp *server, stop func(), err error) {
	if tp, err = e.startTrustproxy(ctx, e.trust); err != nil {
		return nil, nil, nil, err
	}
	if dp, err = e.startDistProxy(ctx); err != nil {
		e.discard(tp)
		return nil, nil, nil, err
	}
	return tp, dp, func() { e.discard(dp); e.discard(tp) }, nil
}
