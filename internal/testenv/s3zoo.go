package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// S3Registry is distribution's registry binary on its s3 driver against
// versitygw (posix backend): blob GETs and HEADs are answered 307 with a
// presigned URL on the S3 host, GET and HEAD signed separately, exactly as
// S3-backed registries do.
type S3Registry struct {
	// URL and Host of the registry.
	URL, Host string
	// S3URL is the S3 endpoint presigned URLs point at.
	S3URL string
	s3log *syncBuffer
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startProcess(t testing.TB, out *syncBuffer, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

func waitHTTP(t testing.TB, url string, out *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up:\n%s", url, out)
		}
	}
}

// NewS3Registry starts versitygw and the registry binary, protected with
// htpasswd (user, password) so that there is a credential to leak.
func NewS3Registry(t testing.TB, user, password string) *S3Registry {
	t.Helper()
	vgw, err := VersityGWBinary()
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	reg, err := toolBinary("registry", "github.com/distribution/distribution/v3/cmd/registry@v3.1.2")
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "s3", "registry"), 0o755); err != nil { // the bucket
		t.Fatal(err)
	}
	r := &S3Registry{s3log: &syncBuffer{}}
	g, err := startVersityGW(vgw, filepath.Join(dir, "s3"), r.s3log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	regAddr := freeAddr(t)
	r.URL, r.Host, r.S3URL = "http://"+regAddr, regAddr, g.Endpoint
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  s3: {accesskey: %q, secretkey: %q, region: us-east-1,
       regionendpoint: %q, forcepathstyle: true, bucket: registry, secure: false}
  redirect: {disable: false}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: %q, secret: trustproxy-test}
auth: {htpasswd: {realm: zoo, path: %q}}
`, g.AccessKey, g.SecretKey, r.S3URL, regAddr, WriteHtpasswd(t, user, password))
	path := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	regOut := &syncBuffer{}
	startProcess(t, regOut, []string{"OTEL_TRACES_EXPORTER=none"}, reg, "serve", path)
	waitHTTP(t, r.URL+"/v2/", regOut)
	return r
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// S3Request is one request in versitygw's own debug log.
type S3Request struct {
	URL           string
	Presigned     bool // the URL carries X-Amz-Signature
	Authorization bool // the request carried an Authorization header
}

// S3Requests parses versitygw's debug log: one block per request, starting
// at its "[URL]:" line, listing its headers.
func (r *S3Registry) S3Requests() []S3Request {
	var reqs []S3Request
	for _, block := range strings.Split(ansi.ReplaceAllString(r.s3log.String(), ""), "[URL]: ")[1:] {
		url, rest, _ := strings.Cut(block, "\n")
		reqs = append(reqs, S3Request{URL: url, Presigned: strings.Contains(url, "X-Amz-Signature="),
			Authorization: strings.Contains(rest, "Authorization :")})
	}
	return reqs
}
