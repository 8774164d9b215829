package access

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Config is the client-facing security configuration.
type Config struct {
	// Realm is the Basic authentication realm (default "trustproxy").
	Realm string
	// Htpasswd is a file of bcrypt users (htpasswd -B).
	Htpasswd string
	// Groups maps a group name to its members (user, token subject or
	// certificate names).
	Groups map[string][]string
	// Token makes trustproxy a Docker token service: clients are sent to
	// its /token endpoint and present the JWT it signs.
	Token *TokenConfig
	// External accepts tokens of an existing token service, as
	// distribution's "auth: token" does.
	External *ExternalConfig
	// MTLS maps verified client certificates to principals.
	MTLS *MTLSConfig
	// Rules say who may pull what; what no rule matches is denied.
	Rules []Rule
	// Operators may read the operator endpoints (/metrics, /readyz) on
	// the client listener.
	Operators []string
}

// Options are the authority's injected parts.
type Options struct {
	Now func() time.Time // nil: time.Now
}

// Authority authenticates requests and authorizes pulls.
type Authority struct {
	realm     string
	users     *users
	groups    map[string][]string // member → groups
	issuer    *issuer
	verifiers []*verifier
	external  *ExternalConfig
	mtls      *mtlsMapper
	rules     []Rule
	operators Rule
	tokens    *lru.Cache[string, *claims] // verified tokens
	now       func() time.Time
}

// New validates c and loads its files.
func New(c Config, o Options) (*Authority, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authority{realm: c.Realm, groups: map[string][]string{}, rules: c.Rules, now: o.Now, external: c.External}
	a.tokens, _ = lru.New[string, *claims](8192)
	if a.realm == "" {
		a.realm = "trustproxy"
	}
	for g, members := range c.Groups {
		for _, m := range members {
			a.groups[m] = append(a.groups[m], g)
		}
	}
	for m := range a.groups {
		slices.Sort(a.groups[m])
	}
	if c.Htpasswd != "" {
		hashes, err := loadHtpasswd(c.Htpasswd)
		if err != nil {
			return nil, err
		}
		if a.users, err = newUsers(hashes, 10*time.Minute, o.Now); err != nil {
			return nil, err
		}
	}
	if c.Token != nil {
		is, err := newIssuer(*c.Token, o.Now)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		a.issuer = is
		a.verifiers = append(a.verifiers, is.verifier())
	}
	if c.External != nil {
		v, err := newExternalVerifier(*c.External)
		if err != nil {
			return nil, fmt.Errorf("externalToken: %w", err)
		}
		a.verifiers = append(a.verifiers, v)
	}
	if c.MTLS != nil {
		m, err := newMTLSMapper(*c.MTLS)
		if err != nil {
			return nil, fmt.Errorf("mtls: %w", err)
		}
		a.mtls = m
	}
	if len(c.Rules) == 0 {
		return nil, errors.New("access: at least one rule is required (what no rule matches is denied)")
	}
	for i, r := range c.Rules {
		if err := r.validate(c.Groups); err != nil {
			return nil, fmt.Errorf("access[%d].%w", i, err)
		}
	}
	a.operators = Rule{Allow: c.Operators}
	for _, op := range c.Operators {
		if op == allowAnonymous {
			return nil, errors.New("operators: anonymous is not allowed here; serve the operator endpoints on their own listener instead")
		}
	}
	if a.issuer != nil && a.users == nil && a.mtls == nil {
		return nil, errors.New("token: the token service needs htpasswd users or mtls to know who asks")
	}
	return a, nil
}

// ClientCAs is the pool client certificates are verified against; nil
// when mutual TLS is not configured.
func (a *Authority) ClientCAs() *x509.CertPool {
	if a.mtls == nil {
		return nil
	}
	return a.mtls.roots
}

// ErrBadCredentials means the client sent credentials that are not valid.
var ErrBadCredentials = errors.New("invalid credentials")

// Authenticate says who sent r. A request without credentials is the
// anonymous principal; invalid credentials are an error (never a silent
// fall-back to anonymous).
func (a *Authority) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		switch {
		case strings.EqualFold(scheme, "basic"):
			name, pass, ok := r.BasicAuth()
			if ok && name == "" && pass == "" {
				break // containers/image sends empty Basic credentials when it has none
			}
			if !ok || a.users == nil || !a.users.check(name, pass) {
				return Principal{}, fmt.Errorf("%w: unknown user or wrong password", ErrBadCredentials)
			}
			return a.principal(name, viaBasic), nil
		case strings.EqualFold(scheme, "bearer"):
			claims, err := a.verify(strings.TrimSpace(cred))
			if err != nil {
				return Principal{}, fmt.Errorf("%w: bearer token: %v", ErrBadCredentials, err)
			}
			p := a.principal(claims.subject, viaBearer)
			p.scopes = claims.pull
			return p, nil
		default:
			return Principal{}, fmt.Errorf("%w: unsupported authorization scheme %q", ErrBadCredentials, scheme)
		}
	}
	if a.mtls != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		name, err := a.mtls.identity(r.TLS.VerifiedChains[0][0])
		if err != nil {
			return Principal{}, fmt.Errorf("%w: client certificate: %v", ErrBadCredentials, err)
		}
		return a.principal(name, viaMTLS), nil
	}
	return Principal{Via: viaAnonymous}, nil
}

func (a *Authority) principal(name, via string) Principal {
	if name == "" {
		return Principal{Via: via}
	}
	return Principal{Name: name, Groups: a.groups[name], Via: via}
}

// Decision is the answer to "may p pull repo".
type Decision struct {
	Allowed bool
	// Challenge: the client should (re)authenticate (401) rather than be
	// refused (403): it is anonymous or its token lacks the scope.
	Challenge bool
	// Rule is the access pattern that decided; empty when none matched.
	Rule   string
	Reason string
}

// Authorize decides whether p may pull repo ("<upstream>/<repository>"),
// which the client named name in its request (and in its token scope).
func (a *Authority) Authorize(p Principal, repo, name string) Decision {
	if p.scopes != nil && !p.scopes[name] {
		return Decision{Challenge: true, Reason: fmt.Sprintf("the bearer token of %s does not grant pull on %q", p, name)}
	}
	i, pat := match(a.rules, repo)
	if i < 0 {
		return Decision{Challenge: p.Anonymous(), Reason: fmt.Sprintf("no access rule matches %s, so nobody may pull it", repo)}
	}
	if a.rules[i].admits(p) {
		return Decision{Allowed: true, Rule: pat}
	}
	return Decision{Challenge: p.Anonymous(), Rule: pat,
		Reason: fmt.Sprintf("%s may not pull %s (access rule %q allows %s)", p, repo, pat, strings.Join(a.rules[i].Allow, ", "))}
}

// Operator reports whether p may read the operator endpoints.
func (a *Authority) Operator(p Principal) bool { return a.operators.admits(p) }

// Challenge sets the WWW-Authenticate header that sends a client to log
// in: a Bearer challenge naming the token service and scope when tokens
// are in use, Basic otherwise. name is the repository the client asked for
// ("" for the /v2/ check).
func (a *Authority) Challenge(w http.ResponseWriter, r *http.Request, name string) {
	realm, service := "", ""
	switch {
	case a.issuer != nil:
		realm, service = a.issuer.realmFor(r), a.issuer.service
	case a.external != nil:
		realm, service = a.external.Realm, a.external.Service
	default:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", a.realm))
		return
	}
	v := fmt.Sprintf("Bearer realm=%q,service=%q", realm, service)
	if name != "" {
		v += fmt.Sprintf(",scope=%q", "repository:"+name+":pull")
	}
	w.Header().Set("WWW-Authenticate", v)
}
