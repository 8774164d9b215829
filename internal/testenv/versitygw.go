package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/s3"
)

// VersityGW is a real S3 server (versitygw, posix backend) on loopback:
// what the tests and the benchmark use as the shared bucket of replicas.
type VersityGW struct {
	Endpoint             string // http://127.0.0.1:port
	AccessKey, SecretKey string
	cmd                  *exec.Cmd
}

// VersityGWBinary finds versitygw on PATH or in $GOPATH/bin (where `go
// install github.com/versity/versitygw/cmd/versitygw@v1.8.0` puts it).
func VersityGWBinary() (string, error) {
	return toolBinary("versitygw", "github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

// toolBinary finds a go-installed tool on PATH or in $GOPATH/bin.
func toolBinary(name, pkg string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found on PATH or in %s (go install %s)", name, filepath.Dir(p), pkg)
	}
	return p, nil
}

// NewVersityGW starts versitygw for the test (skipped where it is not
// installed, failed in CI) and stops it when the test ends.
func NewVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	bin, err := VersityGWBinary()
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	g, err := StartVersityGW(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// StartVersityGW starts bin serving dir on a free loopback port and waits
// until it accepts connections.
func StartVersityGW(bin, dir string) (*VersityGW, error) {
	return startVersityGW(bin, dir, nil)
}

// startVersityGW is StartVersityGW; with debugLog set, versitygw writes its
// request log (every request with its headers, secrets masked) there.
func startVersityGW(bin, dir string, debugLog io.Writer) (*VersityGW, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	g := &VersityGW{Endpoint: "http://" + addr, AccessKey: "testaccess", SecretKey: "testsecret123"}
	args := []string{"--access", g.AccessKey, "--secret", g.SecretKey, "--port", addr}
	if debugLog != nil {
		args = append(args, "--log-level", "debug")
	}
	g.cmd = exec.Command(bin, append(args, "posix", dir)...)
	g.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	g.cmd.Stdout, g.cmd.Stderr = debugLog, debugLog
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return g, nil
		}
		if time.Now().After(deadline) {
			g.Close()
			return nil, fmt.Errorf("versitygw did not listen on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the server.
func (g *VersityGW) Close() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		_ = g.cmd.Wait()
	}
}

// Client is an S3 client for the server.
func (g *VersityGW) Client() *s3.S3 {
	sess := session.Must(session.NewSession(aws.NewConfig().WithRegion("us-east-1").WithEndpoint(g.Endpoint).
		WithCredentials(credentials.NewStaticCredentials(g.AccessKey, g.SecretKey, "")).
		WithS3ForcePathStyle(true).WithDisableSSL(true)))
	return s3.New(sess)
}

// CreateBucket makes a bucket.
func (g *VersityGW) CreateBucket(ctx context.Context, name string) error {
	_, err := g.Client().CreateBucketWithContext(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// NewBucket creates a fresh bucket for the test and returns the s3 storage
// driver parameters (distribution's names) for it.
func (g *VersityGW) NewBucket(t testing.TB, name string) map[string]any {
	t.Helper()
	if err := g.CreateBucket(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return g.DriverParams(name)
}

// DriverParams are the s3 storage driver parameters for bucket.
func (g *VersityGW) DriverParams(bucket string) map[string]any {
	return map[string]any{
		"accesskey": g.AccessKey, "secretkey": g.SecretKey, "region": "us-east-1",
		"regionendpoint": g.Endpoint, "forcepathstyle": true, "bucket": bucket, "secure": false,
		"rootdirectory": "/trustproxy",
	}
}
