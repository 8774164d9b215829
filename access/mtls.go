package access

import (
	"crypto/x509"
	"errors"
	"fmt"
)

// MTLSConfig maps client certificates to principals.
type MTLSConfig struct {
	// ClientCAs is a PEM bundle of the CAs that issue client certificates.
	ClientCAs string
	// Identity is which part of the certificate names the principal:
	// commonName (default), uri (e.g. a SPIFFE ID), email or dns.
	Identity string
}

type mtlsMapper struct {
	roots    *x509.CertPool
	identity func(*x509.Certificate) (string, error)
}

func newMTLSMapper(c MTLSConfig) (*mtlsMapper, error) {
	if c.ClientCAs == "" {
		return nil, errors.New("clientCAs: required")
	}
	certs, err := readCerts(c.ClientCAs)
	if err != nil {
		return nil, fmt.Errorf("clientCAs: %w", err)
	}
	m := &mtlsMapper{roots: x509.NewCertPool()}
	for _, cert := range certs {
		m.roots.AddCert(cert)
	}
	first := func(kind string, vals []string) (string, error) {
		if len(vals) == 0 || vals[0] == "" {
			return "", fmt.Errorf("the certificate has no %s", kind)
		}
		return vals[0], nil
	}
	switch c.Identity {
	case "", "commonName":
		m.identity = func(c *x509.Certificate) (string, error) { return first("common name", []string{c.Subject.CommonName}) }
	case "uri":
		m.identity = func(c *x509.Certificate) (string, error) {
			var uris []string
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			return first("URI SAN", uris)
		}
	case "email":
		m.identity = func(c *x509.Certificate) (string, error) { return first("email SAN", c.EmailAddresses) }
	case "dns":
		m.identity = func(c *x509.Certificate) (string, error) { return first("DNS SAN", c.DNSNames) }
	default:
		return nil, fmt.Errorf("identity: %q is not one of commonName, uri, email, dns", c.Identity)
	}
	return m, nil
}
