package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// NotaryServer is Debian's notary-server (package notary, 0.7.0+ds1) with
// the memory backend and a local trust service, which signs timestamps and
// (for collections that hand it the snapshot key, as DCT and Signy do)
// snapshots. A `go install`ed v0.7.0 server built with a current Go refuses
// every delegation publish, so tests use Debian's binary.
type NotaryServer struct {
	URL string
	// CA and CAFile are the PEM CA of a TLS server (NewNotaryServerTLS).
	CA     []byte
	CAFile string
	cmd    *exec.Cmd
}

// NewNotaryServer starts notary-server on a free loopback port; it stops
// with the test. A missing binary skips the test, or fails it in CI.
func NewNotaryServer(t testing.TB) *NotaryServer {
	t.Helper()
	return newNotaryServer(t, false)
}

// NewNotaryServerTLS is NewNotaryServer serving https with a certificate
// for 127.0.0.1 from a fresh CA (s.CA), as `docker trust` requires.
func NewNotaryServerTLS(t testing.TB) *NotaryServer {
	t.Helper()
	return newNotaryServer(t, true)
}

func newNotaryServer(t testing.TB, withTLS bool) *NotaryServer {
	t.Helper()
	bin, err := exec.LookPath("notary-server")
	if err != nil {
		SkipOrFail(t, "notary-server not installed (apt-get install notary)")
	}
	if _, err := exec.LookPath("notary"); err != nil {
		SkipOrFail(t, "notary CLI not installed (apt-get install notary)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	s := &NotaryServer{URL: "http://" + addr}
	tlsKeys := ""
	var client = http.DefaultClient
	if withTLS {
		ca, certPEM, keyPEM := loopbackCert(t)
		s.URL, s.CA, s.CAFile = "https://"+addr, ca, filepath.Join(dir, "ca.crt")
		certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		for p, b := range map[string][]byte{s.CAFile: ca, certFile: certPEM, keyFile: keyPEM} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		tlsKeys = fmt.Sprintf(`,"tls_cert_file":%q,"tls_key_file":%q`, certFile, keyFile)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	cfg := fmt.Sprintf(`{"server":{"http_addr":%q%s},"trust_service":{"type":"local","key_algorithm":"ecdsa"},"storage":{"backend":"memory"},"logging":{"level":"error"}}`, addr, tlsKeys)
	cfgPath := filepath.Join(dir, "server.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "-config", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start notary-server: %v", err)
	}
	t.Cleanup(s.Stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(s.URL + "/_notary_server/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("notary-server did not become healthy: %v\n%s", err, b)
		}
	}
}

// Stop stops the server (its memory backend forgets everything).
func (s *NotaryServer) Stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// loopbackCert makes a CA and a server certificate for 127.0.0.1 it signs.
func loopbackCert(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notary test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// NotarySigner drives the real `notary` CLI against a server the way
// Docker Content Trust and Signy publish: a root key and a targets key per
// collection, the snapshot key handed to the server, and optionally a
// targets/releases delegation whose key signs the tags.
type NotarySigner struct {
	t      testing.TB
	server string
	dir    string
	client *http.Client
	caFile string
}

// NewNotarySigner uses a fresh trust directory (its own root key).
func NewNotarySigner(t testing.TB, server string) *NotarySigner {
	return &NotarySigner{t: t, server: server, dir: t.TempDir(), client: http.DefaultClient}
}

// NewNotarySignerFor is NewNotarySigner for s, trusting its CA if it has one.
func NewNotarySignerFor(t testing.TB, s *NotaryServer) *NotarySigner {
	n := NewNotarySigner(t, s.URL)
	if s.CAFile != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CA)
		n.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		n.caFile = s.CAFile
	}
	return n
}

// Run runs the notary CLI and returns its combined output.
func (n *NotarySigner) Run(args ...string) (string, error) {
	global := []string{"-s", n.server, "-d", n.dir}
	if n.caFile != "" {
		global = append(global, "--tlscacert", n.caFile)
	}
	cmd := exec.Command("notary", append(global, args...)...)
	cmd.Env = append(os.Environ(), "NOTARY_ROOT_PASSPHRASE=root-pass", "NOTARY_TARGETS_PASSPHRASE=targets-pass",
		"NOTARY_SNAPSHOT_PASSPHRASE=snapshot-pass", "NOTARY_DELEGATION_PASSPHRASE=delegation-pass")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *NotarySigner) must(args ...string) string {
	n.t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		n.t.Fatalf("notary %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Init creates and publishes the collection gun with a server-managed
// snapshot key (DCT's and Signy's Initialize(rootKeys, snapshot)).
func (n *NotarySigner) Init(gun string) {
	n.t.Helper()
	n.must("init", gun, "-p")
	n.must("key", "rotate", gun, "snapshot", "-r")
}

// AddReleases adds the targets/releases delegation (all paths) with a new
// ECDSA key, as `docker trust signer add` does, and imports its key.
func (n *NotarySigner) AddReleases(gun string) {
	n.t.Helper()
	n.AddDelegation(gun, "targets/releases")
}

// AddDelegation adds delegation role (all paths) with a new ECDSA key and
// imports its key.
func (n *NotarySigner) AddDelegation(gun, role string) {
	n.t.Helper()
	base := strings.ReplaceAll(role, "/", "_")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		n.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: base},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour * 365),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		n.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		n.t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(n.dir, base+".crt"), filepath.Join(n.dir, base+"-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		n.t.Fatal(err)
	}
	n.must("delegation", "add", gun, role, certPath, "--all-paths", "-p")
	n.must("key", "import", keyPath, "--role", role)
}

// Sign adds tag → content (sha256, sha512 and length of the bytes, as
// `notary add` and Signy compute them) in role ("targets" or
// "targets/releases") and publishes. custom, if not nil, is the target's
// custom JSON.
func (n *NotarySigner) Sign(gun, tag string, content []byte, role string, custom []byte) {
	n.t.Helper()
	s256, s512 := sha256.Sum256(content), sha512.Sum512(content)
	args := []string{"addhash", gun, tag, strconv.Itoa(len(content)), "--sha256", hex.EncodeToString(s256[:]),
		"--sha512", hex.EncodeToString(s512[:]), "-p"}
	if role != "targets" {
		args = append(args, "-r", role)
	}
	if custom != nil {
		p := filepath.Join(n.dir, "custom-"+tag+".json")
		if err := os.WriteFile(p, custom, 0o600); err != nil {
			n.t.Fatal(err)
		}
		args = append(args, "--custom", p)
	}
	n.must(args...)
}

// Remove removes tag from role and publishes (revocation).
func (n *NotarySigner) Remove(gun, tag, role string) {
	n.t.Helper()
	args := []string{"remove", gun, tag, "-p"}
	if role != "targets" {
		args = append(args, "-r", role)
	}
	n.must(args...)
}

// RootKeyID is the ID of gun's root key as root.json lists it: what a
// trust pin names (not the private key ID `notary key list` shows).
func (n *NotarySigner) RootKeyID(gun string) string {
	n.t.Helper()
	resp, err := n.client.Get(n.server + "/v2/" + gun + "/_trust/tuf/root.json")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		n.t.Fatalf("root.json of %s: %v %s", gun, err, b)
	}
	var root struct {
		Signed struct {
			Roles map[string]struct {
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &root); err != nil || len(root.Signed.Roles["root"].KeyIDs) != 1 {
		n.t.Fatalf("root.json of %s: %v %s", gun, err, b)
	}
	return root.Signed.Roles["root"].KeyIDs[0]
}

// RootCert is the PEM certificate of gun's root key from root.json.
func (n *NotarySigner) RootCert(gun string) []byte {
	n.t.Helper()
	id := n.RootKeyID(gun)
	resp, err := n.client.Get(n.server + "/v2/" + gun + "/_trust/tuf/root.json")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var root struct {
		Signed struct {
			Keys map[string]struct {
				Keyval struct{ Public []byte } `json:"keyval"`
			} `json:"keys"`
		} `json:"signed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&root); err != nil {
		n.t.Fatal(err)
	}
	return root.Signed.Keys[id].Keyval.Public
}
