package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/proxy"
)

// authConfig is the auth section: who clients are (README "Security").
type authConfig struct {
	Realm         string               `json:"realm"`
	Htpasswd      string               `json:"htpasswd"`
	Groups        map[string][]string  `json:"groups"`
	Token         *tokenConfig         `json:"token"`
	ExternalToken *externalTokenConfig `json:"externalToken"`
	MTLS          *mtlsConfig          `json:"mtls"`
	Operators     []string             `json:"operators"`
}

type tokenConfig struct {
	Realm   string   `json:"realm"`
	Issuer  string   `json:"issuer"`
	Service string   `json:"service"`
	Key     string   `json:"key"`
	Expiry  duration `json:"expiry"`
}

type externalTokenConfig struct {
	Realm          string `json:"realm"`
	Issuer         string `json:"issuer"`
	Service        string `json:"service"`
	RootCertBundle string `json:"rootCertBundle"`
	JWKS           string `json:"jwks"`
}

type mtlsConfig struct {
	ClientCAs string `json:"clientCAs"`
	Identity  string `json:"identity"`
}

// accessRuleConfig is one entry of the access list.
type accessRuleConfig struct {
	Match patterns `json:"match"`
	Allow []string `json:"allow"`
}

// patterns reads one pattern or a list of them.
type patterns []string

func (p *patterns) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*p = patterns{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("want a pattern or a list of patterns")
	}
	*p = many
	return nil
}

// limitsConfig bounds what one client can take (README "Security").
type limitsConfig struct {
	HeaderTimeout     duration `json:"headerTimeout"`
	IdleTimeout       duration `json:"idleTimeout"`
	MaxConnections    int      `json:"maxConnections"`
	RequestsPerSecond float64  `json:"requestsPerSecond"`
	Burst             int      `json:"burst"`
}

// operatorConfig serves /metrics, /healthz and /readyz on a listener of
// their own, without client authentication.
type operatorConfig struct {
	Listen string `json:"listen"`
}

func (c *fileConfig) validateAccess(abs func(string) string) error {
	if c.Auth != nil && len(c.Access) == 0 {
		return errors.New("access: required with auth: list who may pull what (what no entry matches is denied)")
	}
	if a := c.Auth; a != nil {
		a.Htpasswd = abs(a.Htpasswd)
		if a.Token != nil {
			a.Token.Key = abs(a.Token.Key)
		}
		if e := a.ExternalToken; e != nil {
			e.RootCertBundle, e.JWKS = abs(e.RootCertBundle), abs(e.JWKS)
		}
		if m := a.MTLS; m != nil {
			if c.TLS == nil {
				return errors.New("auth.mtls: needs tls (client certificates are part of the TLS handshake)")
			}
			m.ClientCAs = abs(m.ClientCAs)
		}
	}
	l := c.Limits
	if l.MaxConnections < 0 || l.RequestsPerSecond < 0 || l.Burst < 0 {
		return errors.New("limits: values must not be negative")
	}
	if l.HeaderTimeout != 0 && time.Duration(l.HeaderTimeout) < 100*time.Millisecond {
		return fmt.Errorf("limits.headerTimeout: %s is too short for any client", time.Duration(l.HeaderTimeout))
	}
	return nil
}

// accessAuthority builds the access configuration; nil when there is none.
func (c *fileConfig) accessAuthority() (*access.Authority, error) {
	if c.Auth == nil && len(c.Access) == 0 {
		return nil, nil
	}
	ac := access.Config{}
	if a := c.Auth; a != nil {
		ac = access.Config{Realm: a.Realm, Htpasswd: a.Htpasswd, Groups: a.Groups, Operators: a.Operators}
		if t := a.Token; t != nil {
			ac.Token = &access.TokenConfig{Realm: t.Realm, Issuer: t.Issuer, Service: t.Service, Key: t.Key, Expiry: time.Duration(t.Expiry)}
		}
		if e := a.ExternalToken; e != nil {
			ac.External = &access.ExternalConfig{Realm: e.Realm, Issuer: e.Issuer, Service: e.Service, RootCertBundle: e.RootCertBundle, JWKS: e.JWKS}
		}
		if m := a.MTLS; m != nil {
			ac.MTLS = &access.MTLSConfig{ClientCAs: m.ClientCAs, Identity: m.Identity}
		}
	}
	for _, r := range c.Access {
		ac.Rules = append(ac.Rules, access.Rule{Match: r.Match, Allow: r.Allow})
	}
	a, err := access.New(ac, access.Options{})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return a, nil
}

func (c *fileConfig) proxyLimits() proxy.Limits {
	l := c.Limits
	return proxy.Limits{HeaderTimeout: time.Duration(l.HeaderTimeout), IdleTimeout: time.Duration(l.IdleTimeout),
		MaxConnections: l.MaxConnections, RequestsPerSecond: l.RequestsPerSecond, Burst: l.Burst}
}
