package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
)

func (s *stack) tlsDir() string { return filepath.Join(s.work, "tls") }

// caDir holds only ca.crt: the layout of docker's and containers'
// certs.d directories (--cert-dir), where a *.key would be taken for a
// client certificate.
func (s *stack) caDir() string { return filepath.Join(s.work, "tls", "ca") }

// issueTLS makes a throw-away CA (tls/ca/ca.crt) and a certificate for
// 127.0.0.1 and localhost (tls/tls.crt, tls/tls.key) for trustproxy-tls.
func (s *stack) issueTLS() error {
	dir := s.tlsDir()
	if err := os.MkdirAll(s.caDir(), 0o755); err != nil {
		return err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trustproxy e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// The key is readable by all: the container's user (65532) reads it
	// through the bind mount, and it protects nothing beyond this run.
	for name, block := range map[string]*pem.Block{
		"ca/ca.crt": {Type: "CERTIFICATE", Bytes: caDER},
		"tls.crt":   {Type: "CERTIFICATE", Bytes: der},
		"tls.key":   {Type: "PRIVATE KEY", Bytes: pk},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tlsClient trusts the stack's CA only.
func (s *stack) tlsTransport() (*http.Transport, error) {
	b, err := os.ReadFile(filepath.Join(s.caDir(), "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", s.caDir())
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// waitReadyTLS waits until trustproxy-tls answers /readyz over verified TLS.
func (s *stack) waitReadyTLS(ctx context.Context) error {
	tr, err := s.tlsTransport()
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	url := "https://" + s.proxyTLS + "/readyz"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("trustproxy-tls: GET %s: not ready within 2m; last answer: %s", url, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestTLS pulls from trustproxy serving TLS, with each client given the
// CA the way CLIENTS.md says, and checks that without it the client refuses
// the certificate (so the pulls really verified it). Docker is left out: it
// treats 127.0.0.0/8 as insecure and would not verify.
func TestTLS(t *testing.T) {
	s := needStack(t)
	ref := s.proxyTLS + "/" + upstreamName + "/acme/signed:1.0"
	caDir := s.caDir()

	t.Run("crane", func(t *testing.T) {
		tr, err := s.tlsTransport()
		if err != nil {
			t.Fatal(err)
		}
		d, err := crane.Digest(ref, crane.WithTransport(tr), crane.WithContext(t.Context()))
		if err != nil || d != s.seed.signed {
			t.Fatalf("crane digest %s = %q, %v; want %s", ref, d, err, s.seed.signed)
		}
		_, err = crane.Digest(ref, crane.WithContext(t.Context()))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("without the CA: %v; want a certificate error", err)
		}
		_, err = crane.Digest(s.proxyTLS+"/"+upstreamName+"/acme/unsigned:1.0", crane.WithTransport(tr), crane.WithContext(t.Context()))
		wantDenied(t, "crane digest acme/unsigned over TLS", err, upstreamName+"/acme/unsigned")
	})
	t.Run("skopeo", func(t *testing.T) {
		needTool(t, "skopeo")
		out := mustTool(t, nil, "skopeo", "inspect", "--no-tags", "--cert-dir", caDir, "--format", "{{.Digest}}", "docker://"+ref)
		if d := strings.TrimSpace(out); d != s.seed.signed {
			t.Fatalf("digest %s; want %s", d, s.seed.signed)
		}
		out, err := tool(t, nil, "skopeo", "inspect", "--no-tags", "docker://"+ref)
		wantRefused(t, out, err, "certificate signed by unknown authority")
	})
	t.Run("podman", func(t *testing.T) {
		needTool(t, "podman")
		needRoot(t)
		dir := shortTempDir(t, "podman-tls")
		podman := func(args ...string) []string {
			return append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
				"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs",
				"--events-backend", "none", "--cgroup-manager", "cgroupfs"}, args...)
		}
		mustTool(t, nil, "podman", podman("pull", "--cert-dir", caDir, ref)...)
		d := strings.TrimSpace(mustTool(t, nil, "podman", podman("image", "inspect", "--format", "{{.Digest}}", ref)...))
		if d != s.seed.signed {
			t.Fatalf("digest %s; want %s", d, s.seed.signed)
		}
	})
	t.Run("containerd", func(t *testing.T) {
		sock := startContainerd(t)
		hostsDir := filepath.Join(shortTempDir(t, "certs.d"), "certs.d")
		if err := os.MkdirAll(filepath.Join(hostsDir, upstreamName), 0o755); err != nil {
			t.Fatal(err)
		}
		hosts := fmt.Sprintf(`server = "https://%[1]s"

[host."https://%[1]s"]
  capabilities = ["pull", "resolve"]
  ca = %[2]q
`, s.proxyTLS, filepath.Join(caDir, "ca.crt"))
		if err := os.WriteFile(filepath.Join(hostsDir, upstreamName, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
		mustTool(t, nil, "ctr", "-a", sock, "-n", "e2e", "images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", upstreamName+"/acme/signed:1.0")
		out := mustTool(t, nil, "ctr", "-a", sock, "-n", "e2e", "images", "ls")
		if !strings.Contains(out, s.seed.signed) {
			t.Fatalf("ctr images ls lacks %s:\n%s", s.seed.signed, out)
		}
	})
}
