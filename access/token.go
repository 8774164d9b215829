package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/distribution/distribution/v3/registry/auth/token"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenConfig configures the token service trustproxy runs itself.
type TokenConfig struct {
	// Realm is the token endpoint's URL as clients reach it; empty: the
	// /token path on the host and scheme the client used.
	Realm   string
	Issuer  string
	Service string
	// Key is a PEM private key (EC P-256/P-384, RSA, Ed25519) that signs
	// the tokens.
	Key    string
	Expiry time.Duration // default 5m
}

// ExternalConfig accepts tokens signed by another token service, with
// distribution's "auth: token" options.
type ExternalConfig struct {
	Realm   string
	Issuer  string
	Service string
	// RootCertBundle holds the certificates whose keys (or whose chains,
	// for tokens with an x5c header) may sign tokens.
	RootCertBundle string
	// JWKS is a JSON Web Key Set file of signing keys.
	JWKS string
}

// verifier checks tokens of one issuer.
type verifier struct {
	opts token.VerifyOptions
}

// claims is what a verified token says, cached until it expires.
type claims struct {
	subject string
	pull    map[string]bool
	expires time.Time
}

var signingAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// verify checks a raw token against every configured issuer. Verified
// tokens are remembered until they expire: clients present the same token
// on every request, and a signature check costs more than serving a cached
// manifest.
func (a *Authority) verify(raw string) (*claims, error) {
	if len(a.verifiers) == 0 {
		return nil, errors.New("no token issuer is configured")
	}
	if c, ok := a.tokens.Get(raw); ok && a.now().Before(c.expires) {
		return c, nil
	}
	t, err := token.NewToken(raw, signingAlgs)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, v := range a.verifiers {
		cs, err := t.Verify(v.opts)
		if err != nil {
			lastErr = err
			continue
		}
		c := &claims{subject: cs.Subject, pull: map[string]bool{}, expires: time.Unix(cs.Expiration, 0)}
		for _, ra := range cs.Access {
			if ra.Type != "repository" {
				continue
			}
			for _, act := range ra.Actions {
				if act == "pull" || act == "*" {
					c.pull[ra.Name] = true
				}
			}
		}
		if !a.now().Before(c.expires) {
			return nil, fmt.Errorf("token expired at %s", c.expires.UTC().Format(time.RFC3339))
		}
		a.tokens.Add(raw, c)
		return c, nil
	}
	return nil, lastErr
}

// issuer signs tokens for the /token endpoint.
type issuer struct {
	cfg     TokenConfig
	signer  jose.Signer
	kid     string
	pub     crypto.PublicKey
	now     func() time.Time
	service string
}

func newIssuer(c TokenConfig, now func() time.Time) (*issuer, error) {
	if c.Issuer == "" || c.Service == "" || c.Key == "" {
		return nil, errors.New("issuer, service and key are required")
	}
	if c.Expiry == 0 {
		c.Expiry = 5 * time.Minute
	}
	b, err := os.ReadFile(c.Key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	priv, alg, err := parsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", c.Key, err)
	}
	pub := priv.(crypto.Signer).Public()
	kid := token.GetJWKThumbprint(pub)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", c.Key, err)
	}
	return &issuer{cfg: c, signer: signer, kid: kid, pub: pub, now: now, service: c.Service}, nil
}

func (is *issuer) verifier() *verifier {
	return &verifier{opts: token.VerifyOptions{
		TrustedIssuers: []string{is.cfg.Issuer}, AcceptedAudiences: []string{is.cfg.Service},
		TrustedKeys: map[string]crypto.PublicKey{is.kid: is.pub},
	}}
}

// issue signs a token for subject ("" for anonymous) granting pull on names.
func (is *issuer) issue(subject string, names []string) (string, time.Time, error) {
	now := is.now()
	exp := now.Add(is.cfg.Expiry)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, err
	}
	cs := token.ClaimSet{
		Issuer: is.cfg.Issuer, Subject: subject, Audience: token.AudienceList{is.cfg.Service},
		Expiration: exp.Unix(), NotBefore: now.Add(-time.Second).Unix(), IssuedAt: now.Unix(),
		JWTID: hex.EncodeToString(jti[:]), Access: []*token.ResourceActions{},
	}
	for _, n := range names {
		cs.Access = append(cs.Access, &token.ResourceActions{Type: "repository", Name: n, Actions: []string{"pull"}})
	}
	raw, err := jwt.Signed(is.signer).Claims(cs).Serialize()
	return raw, now, err
}

func parsePrivateKey(b []byte) (crypto.PrivateKey, jose.SignatureAlgorithm, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", errors.New("no PEM block")
	}
	var key any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, "", fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, "", err
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return k, jose.ES256, nil
		case elliptic.P384():
			return k, jose.ES384, nil
		case elliptic.P521():
			return k, jose.ES512, nil
		}
		return nil, "", errors.New("unsupported EC curve")
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, "", errors.New("RSA keys must have at least 2048 bits")
		}
		return k, jose.RS256, nil
	case ed25519.PrivateKey:
		return k, jose.EdDSA, nil
	}
	return nil, "", fmt.Errorf("unsupported key type %T", key)
}

func newExternalVerifier(c ExternalConfig) (*verifier, error) {
	if c.Realm == "" || c.Issuer == "" || c.Service == "" {
		return nil, errors.New("realm, issuer and service are required")
	}
	opts := token.VerifyOptions{TrustedIssuers: []string{c.Issuer}, AcceptedAudiences: []string{c.Service},
		Roots: x509.NewCertPool(), TrustedKeys: map[string]crypto.PublicKey{}}
	if c.RootCertBundle != "" {
		certs, err := readCerts(c.RootCertBundle)
		if err != nil {
			return nil, fmt.Errorf("rootCertBundle: %w", err)
		}
		for _, cert := range certs {
			opts.Roots.AddCert(cert)
			if kid := token.GetJWKThumbprint(cert.PublicKey); kid != "" {
				opts.TrustedKeys[kid] = cert.PublicKey
			}
		}
	}
	if c.JWKS != "" {
		b, err := os.ReadFile(c.JWKS)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("jwks %s: %w", c.JWKS, err)
		}
		for _, k := range set.Keys {
			opts.TrustedKeys[k.KeyID] = k.Public().Key
		}
	}
	if len(opts.TrustedKeys) == 0 {
		return nil, errors.New("rootCertBundle or jwks must name at least one signing key")
	}
	return &verifier{opts: opts}, nil
}

// readCerts reads every CERTIFICATE block of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificates", path)
	}
	return certs, nil
}
