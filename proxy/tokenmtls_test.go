package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/internal/testenv"
)

// trustproxy behind an existing token service (distribution's "auth:
// token" options): skopeo gets its token from that service (on another
// port: go-containerregistry refuses a realm on another private host:port,
// so crane cannot be this client), trustproxy verifies it against the
// service's JWKS and honours its scopes.
func TestExternalTokenService(t *testing.T) {
	ti := testenv.NewTokenIssuer(t, "127.0.0.1:0")
	ti.Username, ti.Password = "ci-bot", "ci-pw"
	a, err := access.New(access.Config{
		External: &access.ExternalConfig{Realm: ti.URL, Issuer: ti.Issuer, Service: ti.Service, JWKS: ti.JWKSPath},
		Rules:    []access.Rule{{Match: []string{upName + "/teama/**"}, Allow: []string{"ci-bot"}}},
	}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{rules: allowAll, access: a})
	e.up.PushRandomImage(t, "teama/app:1", 1024, 1, types.OCIManifestSchema1)
	ref := "docker://" + e.host + "/teama/app:1"
	if out, err := runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--creds", "ci-bot:ci-pw", ref); err != nil {
		t.Fatalf("skopeo with the external service's token: %v\n%s", err, out)
	}
	if out, err := runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", "--creds", "ci-bot:wrong", ref); err == nil {
		t.Fatalf("a wrong password at the token service still pulled:\n%s", out)
	}
	if out, err := runTool(t, "skopeo", "inspect", "--no-tags", "--tls-verify=false", ref); err == nil {
		t.Fatalf("an anonymous token pulled:\n%s", out)
	}
}

// Client certificates map to principals: a certificate from the client CA
// pulls what its name may; without one the client is anonymous.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clients CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientDER, _ := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "build-01"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		ca, &clientKey.PublicKey, caKey)

	a, err := access.New(access.Config{MTLS: &access.MTLSConfig{ClientCAs: caFile},
		Rules: []access.Rule{{Match: []string{upName + "/teama/**"}, Allow: []string{"build-01"}}}}, access.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{rules: allowAll, access: a})
	e.up.PushRandomImage(t, "teama/app:1", 1024, 1, types.OCIManifestSchema1)
	srv := httptest.NewUnstartedServer(e.proxy)
	srv.TLS = &tls.Config{ClientCAs: a.ClientCAs(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := srv.Listener.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	client := func(withCert bool) crane.Option {
		tc := &tls.Config{RootCAs: roots}
		if withCert {
			tc.Certificates = []tls.Certificate{{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}}
		}
		return crane.WithTransport(&http.Transport{TLSClientConfig: tc})
	}
	if _, err := crane.Pull(host+"/teama/app:1", client(true)); err != nil {
		t.Fatalf("pull with the client certificate: %v", err)
	}
	if _, err := crane.Pull(host+"/teama/app:1", client(false)); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("pull without a certificate: %v", err)
	}
}
