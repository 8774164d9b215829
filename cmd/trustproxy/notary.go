package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/trustfetch/notary"
)

// notaryC is trust.<name>.notary: a Notary v1 server (DCT, Signy).
type notaryC struct {
	URL     string       `json:"url"`
	Pins    []notaryPinC `json:"pins"`
	Refresh duration     `json:"refresh"`
	Timeout duration     `json:"timeout"`
	// CA is a PEM file the server's TLS certificate must chain to.
	CA string `json:"ca"`
}

type notaryPinC struct {
	GUN        string   `json:"gun"`
	RootKeyIDs []string `json:"rootKeyIDs"`
	RootCerts  []string `json:"rootCerts"`
	Content    string   `json:"content"`
}

func (n *notaryC) validate(name string, t trustC, abs func(string) string) error {
	if t.Metadata != "" || t.Root != "" || t.Targets != "" || t.Refresh != 0 || t.MaxMetadataBytes != 0 || t.MaxTargetBytes != 0 || t.AllowExpiredFor != 0 {
		return fmt.Errorf("trust.%s: a notary source takes only notary.* keys (its roots are pinned per GUN in notary.pins; refresh is notary.refresh)", name)
	}
	if n.URL == "" {
		return fmt.Errorf("trust.%s.notary.url: required: the Notary server, e.g. https://notary.example:4443", name)
	}
	if len(n.Pins) == 0 {
		return fmt.Errorf("trust.%s.notary.pins: required: GUN patterns with rootKeyIDs or rootCerts (trustproxy never trusts on first use)", name)
	}
	n.CA = abs(n.CA)
	for i := range n.Pins {
		for j, p := range n.Pins[i].RootCerts {
			n.Pins[i].RootCerts[j] = abs(p)
		}
	}
	return nil
}

// openNotary opens a Notary source; its state lives in <state>/trust/<name>.
func openNotary(name string, n *notaryC, state string, log *zap.Logger) (*notary.Source, error) {
	cfg := notary.Config{Name: name, URL: n.URL, StateDir: filepath.Join(state, "trust", name),
		Refresh: time.Duration(n.Refresh), Timeout: time.Duration(n.Timeout)}
	if n.CA != "" {
		b, err := os.ReadFile(n.CA)
		if err != nil {
			return nil, fmt.Errorf("trust.%s.notary.ca: %w", name, err)
		}
		cfg.CA = b
	}
	for i, p := range n.Pins {
		pin := notary.Pin{GUN: p.GUN, RootKeyIDs: p.RootKeyIDs, Content: p.Content}
		for _, f := range p.RootCerts {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("trust.%s.notary.pins[%d].rootCerts: %w", name, i, err)
			}
			pin.RootCerts = append(pin.RootCerts, b)
		}
		cfg.Pins = append(cfg.Pins, pin)
	}
	s, err := notary.Open(cfg, notary.Options{Logger: log.Named("notary")})
	if err != nil {
		return nil, fmt.Errorf("trust.%s.notary: %w", name, err)
	}
	return s, nil
}
