package notary

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/notary/tuf/utils"

	"github.com/trustproxy/trustproxy/internal/pattern"
)

// Defaults applied to zero-valued Config fields.
const (
	DefaultRefresh = 5 * time.Minute
	DefaultTimeout = time.Minute
)

// Content says what a GUN's targets hash.
const (
	// ContentImage: targets hash image manifests (DCT, `signy image`).
	ContentImage = "image"
	// ContentBundle: targets hash a CNAB bundle.json (Signy thin bundles).
	ContentBundle = "bundle"
)

// Config describes one Notary server.
type Config struct {
	// Name of the trust source in the configuration.
	Name string
	// URL of the Notary server, e.g. https://notary.example:4443.
	URL string
	// Pins pin the root of each GUN; the most specific matching pattern
	// applies.
	Pins []Pin
	// StateDir keeps the verified metadata of every GUN between refreshes
	// and restarts (rollback protection). Mandatory.
	StateDir string
	// Refresh is the interval between refreshes in Run (default 5m).
	Refresh time.Duration
	// Timeout bounds one load of one GUN (default 1m).
	Timeout time.Duration
	// CA, if set, is the PEM certificate(s) the server's TLS certificate
	// must chain to instead of the system's roots (a private Notary server).
	CA []byte
}

// Pin pins the root of the GUNs GUN matches.
type Pin struct {
	// GUN is a pattern over the GUN, as policy rules' (internal/pattern):
	// '*' within a segment, a final "**" for one or more segments.
	GUN string
	// RootKeyIDs are the IDs of root keys as root.json lists them (for an
	// ecdsa-x509 root, the ID of the certificate key, not the private key
	// ID `notary key list` shows).
	RootKeyIDs []string
	// RootCerts are PEM root certificates; each stands for its key ID.
	RootCerts [][]byte
	// Content is ContentImage (default) or ContentBundle.
	Content string
}

// resolved is a validated Config with defaults applied.
type resolved struct {
	Config
	url   *url.URL
	pins  []resolvedPin // most specific first
	roots *x509.CertPool
}

type resolvedPin struct {
	Pin
	ids []string
	// dir names the pin in the state directory: a changed pin starts over.
	dir string
}

func (c Config) resolve() (resolved, error) {
	r := resolved{Config: c}
	fail := func(format string, args ...any) (resolved, error) {
		return r, fmt.Errorf("notary trust source %q config: %s", c.Name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.Name) == "" {
		return r, fmt.Errorf("notary trust source config: Name: required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fail("URL: %q is not an http(s) URL of a Notary server", c.URL)
	}
	r.url = u
	if len(c.CA) > 0 {
		r.roots = x509.NewCertPool()
		if !r.roots.AppendCertsFromPEM(c.CA) {
			return fail("CA: no PEM certificate in it")
		}
	}
	if c.StateDir == "" {
		return fail("StateDir: required (keeps verified metadata so rollback protection survives restarts)")
	}
	if len(c.Pins) == 0 {
		return fail("Pins: at least one GUN pattern with pinned root keys is required (trust is never established on first use)")
	}
	switch {
	case c.Refresh < 0:
		return fail("Refresh: %s is negative", c.Refresh)
	case c.Refresh == 0:
		r.Refresh = DefaultRefresh
	}
	switch {
	case c.Timeout < 0:
		return fail("Timeout: %s is negative", c.Timeout)
	case c.Timeout == 0:
		r.Timeout = DefaultTimeout
	}
	for i, p := range c.Pins {
		rp, err := resolvePin(p)
		if err != nil {
			return fail("Pins[%d]: %v", i, err)
		}
		r.pins = append(r.pins, rp)
	}
	slices.SortStableFunc(r.pins, func(a, b resolvedPin) int { return pattern.Specificity(b.GUN) - pattern.Specificity(a.GUN) })
	return r, nil
}

func resolvePin(p Pin) (resolvedPin, error) {
	rp := resolvedPin{Pin: p}
	if err := pattern.Valid(p.GUN); err != nil {
		return rp, fmt.Errorf("GUN: %w", err)
	}
	switch p.Content {
	case "":
		rp.Content = ContentImage
	case ContentImage, ContentBundle:
	default:
		return rp, fmt.Errorf("Content: %q is not one of %s, %s", p.Content, ContentImage, ContentBundle)
	}
	for _, id := range p.RootKeyIDs {
		if b, err := hex.DecodeString(id); err != nil || len(b) != sha256.Size {
			return rp, fmt.Errorf("RootKeyIDs: %q is not a key ID (64 hex digits)", id)
		}
		rp.ids = append(rp.ids, strings.ToLower(id))
	}
	for j, pemBytes := range p.RootCerts {
		cert, err := utils.LoadCertFromPEM(pemBytes)
		if err != nil {
			return rp, fmt.Errorf("RootCerts[%d]: %w", j, err)
		}
		rp.ids = append(rp.ids, utils.CertToKey(cert).ID())
	}
	if len(rp.ids) == 0 {
		return rp, fmt.Errorf("pattern %q pins nothing: set RootKeyIDs or RootCerts (trust is never established on first use)", p.GUN)
	}
	slices.Sort(rp.ids)
	rp.ids = slices.Compact(rp.ids)
	sum := sha256.Sum256([]byte(strings.Join(append([]string{p.GUN, rp.Content}, rp.ids...), "\n")))
	rp.dir = hex.EncodeToString(sum[:8])
	return rp, nil
}

// pinFor returns the pin governing gun.
func (r resolved) pinFor(gun string) (resolvedPin, bool) {
	for _, p := range r.pins {
		if pattern.Match(p.GUN, gun) {
			return p, true
		}
	}
	return resolvedPin{}, false
}
