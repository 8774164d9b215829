package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Who receives the configured upstream credentials (README: "Upstream
// behaviour"):
//   - Basic-challenge registries (ECR, htpasswd): the registry's own origin.
//   - Bearer-challenge registries (Docker Hub, GHCR, Harbor…): the realm of
//     the registry's own /v2/ challenge, and nothing else; the token it
//     issues goes to the registry's origin only.
//
// Redirect targets never get either (redirect.go). trustproxy does the token
// exchange itself rather than through go-containerregistry, whose realm
// guard refuses a realm on a loopback or private IP literal that private
// registries and Harbor installs use.

const (
	maxTokenBody = 64 << 10
	// defaultTokenLife is what the token spec assumes without expires_in.
	defaultTokenLife = 60 * time.Second
)

// challengeCache is the upstream's /v2/ challenge: learnt once, forgotten
// when a ping fails so the next request asks again.
type challengeCache struct {
	mu sync.Mutex
	ch *transport.Challenge
}

func (u *upstream) getChallenge(ctx context.Context) (*transport.Challenge, error) {
	u.challenge.mu.Lock()
	defer u.challenge.mu.Unlock()
	if u.challenge.ch != nil {
		return u.challenge.ch, nil
	}
	ch, err := transport.Ping(ctx, u.reg, schemeOnly{scheme: u.base.Scheme, next: u.rt})
	if err != nil {
		return nil, fmt.Errorf("ping %s/v2/: %w", u.origin, err)
	}
	ch.Scheme = strings.ToLower(ch.Scheme)
	u.challenge.ch = ch
	return ch, nil
}

// schemeOnly lets the /v2/ ping reach only the configured scheme. For an
// http:// upstream go-containerregistry races https against http and starts
// http only 300 ms after an https attempt that the retry transport keeps
// retrying: every cold start paid that. Requests go to the configured URL
// anyway (do), so failing the other scheme at once changes nothing else.
type schemeOnly struct {
	scheme string
	next   http.RoundTripper
}

func (s schemeOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != s.scheme {
		return nil, fmt.Errorf("the upstream is configured as %s://, not %s://", s.scheme, r.URL.Scheme)
	}
	return s.next.RoundTrip(r)
}

// authTransport authenticates requests to the registry's own origin for one
// repository scope. It is only used for that origin (follow decides).
type authTransport struct {
	u     *upstream
	auth  authn.Authenticator
	scope string

	mu      sync.Mutex
	token   string
	expires time.Time // zero: until the registry says otherwise (401)
}

func newAuthTransport(u *upstream, auth authn.Authenticator, scope string) *authTransport {
	return &authTransport{u: u, auth: auth, scope: scope}
}

// RoundTrip sends req with the credentials the challenge asks for. A 401 to
// a Bearer request (the token expired mid-pull, or was revoked) gets one new
// token and one retry: registry requests carry no body, so resending is safe.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	ch, err := t.u.getChallenge(ctx)
	if err != nil {
		return nil, err
	}
	switch ch.Scheme {
	case "bearer":
		tok, err := t.bearer(ctx, ch, false)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := t.u.rt.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		drain(resp.Body)
		if tok, err = t.bearer(ctx, ch, true); err != nil {
			return nil, err
		}
		retry := req.Clone(ctx)
		retry.Header.Set("Authorization", "Bearer "+tok)
		return t.u.rt.RoundTrip(retry)
	case "basic":
		cfg, err := authn.Authorization(ctx, t.auth)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", t.u.name, err)
		}
		if cfg.Username != "" || cfg.Password != "" {
			req.SetBasicAuth(cfg.Username, cfg.Password)
		}
	}
	resp, err := t.u.rt.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && ch.Scheme == "" {
		// The registry wanted no auth at start and does now: learn anew
		// for the next request.
		t.u.challenge.mu.Lock()
		if t.u.challenge.ch == ch {
			t.u.challenge.ch = nil
		}
		t.u.challenge.mu.Unlock()
	}
	return resp, err
}

// bearer returns a valid token, fetching one when there is none, it is about
// to expire, or force is set (the registry refused the current one).
func (t *authTransport) bearer(ctx context.Context, ch *transport.Challenge, force bool) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !force && t.token != "" && (t.expires.IsZero() || time.Now().Before(t.expires)) {
		return t.token, nil
	}
	tok, life, err := t.fetchToken(ctx, ch)
	if err != nil {
		return "", fmt.Errorf("token for %s from upstream %s: %w", t.scope, t.u.name, err)
	}
	t.token, t.expires = tok, time.Time{}
	if life > 0 {
		// Renew a little early so a request never leaves with a token that
		// expires on the way.
		t.expires = time.Now().Add(life - min(life/10, 10*time.Second))
	}
	return tok, nil
}

// fetchToken does the distribution token exchange at the challenge's realm:
// GET with Basic credentials (or none: an anonymous token), or the OAuth2
// refresh-token POST for identity tokens from credential helpers (ACR).
func (t *authTransport) fetchToken(ctx context.Context, ch *transport.Challenge) (string, time.Duration, error) {
	realm, err := url.Parse(ch.Parameters["realm"])
	if err != nil || realm.Host == "" {
		return "", 0, fmt.Errorf("challenge realm %q is not a URL", ch.Parameters["realm"])
	}
	switch {
	case realm.Scheme == "https":
	case realm.Scheme == "http" && t.u.base.Scheme == "http":
	default:
		return "", 0, fmt.Errorf("realm %s: must be https (http only for a plain-http upstream)", realm.Redacted())
	}
	if err := t.u.hostAllowed(realm.Hostname()); err != nil {
		return "", 0, fmt.Errorf("realm %s refused: %w", realm.Redacted(), err)
	}
	cfg, err := authn.Authorization(ctx, t.auth)
	if err != nil {
		return "", 0, fmt.Errorf("credentials: %w", err)
	}
	if cfg.RegistryToken != "" {
		return cfg.RegistryToken, 0, nil
	}
	q := realm.Query()
	if s := ch.Parameters["service"]; s != "" {
		q.Set("service", s)
	}
	q.Add("scope", t.scope)
	var req *http.Request
	if cfg.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cfg.IdentityToken},
			"client_id": {"trustproxy"}, "scope": {t.scope}}
		if s := ch.Parameters["service"]; s != "" {
			form.Set("service", s)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		realm.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err == nil && (cfg.Username != "" || cfg.Password != "") {
			req.SetBasicAuth(cfg.Username, cfg.Password)
		}
	}
	if err != nil {
		return "", 0, err
	}
	origin := originOf(realm)
	client := &http.Client{Transport: t.u.rt, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		// The credentials stay with the realm's origin.
		if originOf(r.URL) != origin || len(via) >= t.u.maxRedirects {
			return fmt.Errorf("token server redirect to %s refused", r.URL.Redacted())
		}
		return nil
	}}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody+1))
	if err != nil {
		return "", 0, fmt.Errorf("read token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("token server %s answered %d: %.200s", origin, resp.StatusCode, body)
	}
	if len(body) > maxTokenBody {
		return "", 0, fmt.Errorf("token response larger than %d bytes", maxTokenBody)
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", 0, fmt.Errorf("token response: %w", err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", 0, fmt.Errorf("token response carries no token")
	}
	life := defaultTokenLife
	if tr.ExpiresIn > 0 {
		life = time.Duration(tr.ExpiresIn) * time.Second
	}
	return tok, life, nil
}
