package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"
)

// UpstreamConfig is one registry trustproxy may fetch from.
type UpstreamConfig struct {
	// Name is the key clients use (path prefix, ?ns=) and policy matches on,
	// usually the registry host: docker.io, ghcr.io.
	Name string
	// URL is where the registry API is, e.g. https://registry-1.docker.io.
	URL string
	// Default makes this upstream serve un-prefixed paths (registry-mirrors).
	Default bool
	// Username and Password are static credentials; Keychain instead reads
	// docker's config.json and credential helpers. Neither set: anonymous.
	Username, Password string
	Keychain           bool
	// Timeout bounds connecting and waiting for response headers, and how
	// long a body may stall between reads. Retries bounds extra attempts of
	// idempotent requests that failed before any byte reached a client.
	Timeout time.Duration
	Retries int
}

// upstream is a configured registry with its per-repository authenticated
// transports. Client credentials never reach it: only the configured ones.
type upstream struct {
	name      string
	base      *url.URL
	reg       name.Registry
	dockerHub bool
	auth      func(context.Context) (authn.Authenticator, error)
	rt        http.RoundTripper
	timeout   time.Duration
	retries   int
	log       *zap.Logger

	mu         sync.Mutex
	transports map[string]http.RoundTripper // per repository pull scope; holds the cached token
}

const maxCachedTransports = 4096

func newUpstream(cfg UpstreamConfig, base http.RoundTripper, log *zap.Logger) (*upstream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: url %q must be http(s)://host[:port]", cfg.Name, cfg.URL)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	up := &upstream{
		name: cfg.Name, base: u, reg: reg,
		dockerHub: cfg.Name == "docker.io" || u.Host == "registry-1.docker.io" || u.Host == "index.docker.io",
		rt:        base, timeout: cfg.Timeout, retries: cfg.Retries,
		log:        log.With(zap.String("upstream", cfg.Name)),
		transports: map[string]http.RoundTripper{},
	}
	if up.timeout <= 0 {
		up.timeout = 30 * time.Second
	}
	switch {
	case cfg.Keychain && (cfg.Username != "" || cfg.Password != ""):
		return nil, fmt.Errorf("upstream %q: auth: set either username/password or keychain, not both", cfg.Name)
	case cfg.Keychain:
		// The keychain is keyed by the registry as users log in to it
		// (docker login docker.io), not by the API host.
		keyReg := reg
		if r, err := name.NewRegistry(cfg.Name); err == nil {
			keyReg = r
		}
		up.auth = func(ctx context.Context) (authn.Authenticator, error) {
			return authn.DefaultKeychain.ResolveContext(ctx, keyReg)
		}
	case cfg.Username != "":
		a := &authn.Basic{Username: cfg.Username, Password: cfg.Password}
		up.auth = func(context.Context) (authn.Authenticator, error) { return a, nil }
	default:
		up.auth = func(context.Context) (authn.Authenticator, error) { return authn.Anonymous, nil }
	}
	return up, nil
}

// transport returns the authenticated transport for pulling repo, doing the
// registry's auth handshake only the first time (tokens are cached per scope
// inside the returned transport and refreshed by it).
func (u *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	u.mu.Lock()
	t, ok := u.transports[repo]
	u.mu.Unlock()
	if ok {
		return t, nil
	}
	auth, err := u.auth(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve credentials for %s: %w", u.name, err)
	}
	scope := u.reg.Repo(repo).Scope(transport.PullScope)
	t, err = transport.NewWithContext(ctx, u.reg, auth, u.rt, []string{scope})
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	if len(u.transports) >= maxCachedTransports {
		clear(u.transports)
	}
	u.transports[repo] = t
	u.mu.Unlock()
	return t, nil
}

// do sends an idempotent request for /v2/<repo>/<path> and returns the
// response for any status; the caller maps non-2xx. Connection failures and
// 502/503/504 are retried with backoff up to u.retries times.
func (u *upstream) do(ctx context.Context, method, repo, path string, hdr http.Header) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt <= u.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
			}
		}
		resp, err := u.once(ctx, method, repo, path, hdr)
		if err == nil && resp.StatusCode != http.StatusBadGateway &&
			resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout {
			return resp, nil
		}
		if err == nil {
			if attempt == u.retries {
				return resp, nil
			}
			drain(resp.Body)
			lastErr = fmt.Errorf("status %d", resp.StatusCode)
			continue
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
		u.log.Debug("upstream request failed", zap.String("path", path), zap.Int("attempt", attempt), zap.Error(err))
	}
	return nil, &ociError{Status: http.StatusBadGateway, Code: "UNKNOWN",
		Message: fmt.Sprintf("upstream %s unreachable: %s %s: %v", u.name, method, path, lastErr)}
}

func (u *upstream) once(ctx context.Context, method, repo, path string, hdr http.Header) (*http.Response, error) {
	t, err := u.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	path, query, _ := strings.Cut(path, "?")
	target := u.base.JoinPath("/v2/", repo, path)
	target.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := t.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = newStallGuard(resp.Body, u.timeout)
	return resp, nil
}

// baseTransport is the one HTTP transport all upstreams share: bounded
// connect and header waits, generous keep-alive pools for blob traffic.
func baseTransport(timeout time.Duration) *http.Transport {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// stallGuard fails a body whose upstream stops sending for longer than d,
// so a dying upstream never holds a client (or a coalesced download) forever.
type stallGuard struct {
	rc    io.ReadCloser
	d     time.Duration
	timer *time.Timer
	mu    sync.Mutex
	timed bool
}

func newStallGuard(rc io.ReadCloser, d time.Duration) io.ReadCloser {
	g := &stallGuard{rc: rc, d: d}
	g.timer = time.AfterFunc(d, func() {
		g.mu.Lock()
		g.timed = true
		g.mu.Unlock()
		rc.Close()
	})
	return g
}

var errStalled = errors.New("upstream stalled")

func (g *stallGuard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	g.timer.Reset(g.d)
	if err != nil && err != io.EOF {
		g.mu.Lock()
		timed := g.timed
		g.mu.Unlock()
		if timed {
			return n, fmt.Errorf("%w: no data for %s: %v", errStalled, g.d, err)
		}
	}
	return n, err
}

func (g *stallGuard) Close() error {
	g.timer.Stop()
	return g.rc.Close()
}

func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	rc.Close()
}
