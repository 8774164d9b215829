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
	// requests that failed before any byte reached a client.
	Timeout time.Duration
	Retries int
	// MaxRedirects bounds the redirects followed for one request (0: the
	// default, 10).
	MaxRedirects int
	// Bounds on one blob download (0: the defaults): MaxBlobBytes for a blob
	// whose size neither the manifest nor the upstream states; BlobTimeout
	// for the whole transfer; MinBytesPerSecond, the average rate below which
	// a transfer older than a minute is abandoned.
	MaxBlobBytes      int64
	BlobTimeout       time.Duration
	MinBytesPerSecond int64
	// Offline marks an upstream that is never contacted: only what a
	// mirror import put into the cache is served (see offline.go).
	Offline bool
}

// Defaults of the per-upstream bounds (README: configuration reference).
const (
	DefaultMaxRedirects      = 10
	DefaultMaxBlobBytes      = 8 << 30
	DefaultBlobTimeout       = 2 * time.Hour
	DefaultMinBytesPerSecond = 1 << 10
)

// upstream is a configured registry with its per-repository authenticated
// transports. Client credentials never reach it: only the configured ones.
type upstream struct {
	name      string
	base      *url.URL
	origin    string // scheme://host:port of the registry API
	reg       name.Registry
	dockerHub bool
	auth      func(context.Context) (authn.Authenticator, error)
	// rt carries no credentials: it is what every request finally goes
	// through, and all a redirect to another origin ever sees.
	rt           http.RoundTripper
	timeout      time.Duration
	maxRedirects int
	blobBounds   transferBounds
	challenge    challengeCache
	log          *zap.Logger

	mu         sync.Mutex
	transports map[string]*authTransport // per repository pull scope; holds the cached token
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
	if cfg.Retries < 0 || cfg.MaxRedirects < 0 || cfg.MaxBlobBytes < 0 || cfg.BlobTimeout < 0 || cfg.MinBytesPerSecond < 0 {
		return nil, fmt.Errorf("upstream %q: retries and bounds must not be negative", cfg.Name)
	}
	up := &upstream{
		name: cfg.Name, base: u, origin: originOf(u), reg: reg,
		dockerHub: cfg.Name == "docker.io" || u.Host == "registry-1.docker.io" || u.Host == "index.docker.io",
		timeout:   cfg.Timeout, maxRedirects: cfg.MaxRedirects,
		blobBounds: transferBounds{maxBytes: cfg.MaxBlobBytes, deadline: cfg.BlobTimeout, minRate: cfg.MinBytesPerSecond},
		log:        log.With(zap.String("upstream", cfg.Name)),
		transports: map[string]*authTransport{},
	}
	if up.timeout <= 0 {
		up.timeout = 30 * time.Second
	}
	if up.maxRedirects == 0 {
		up.maxRedirects = DefaultMaxRedirects
	}
	if up.blobBounds.maxBytes == 0 {
		up.blobBounds.maxBytes = DefaultMaxBlobBytes
	}
	if up.blobBounds.deadline == 0 {
		up.blobBounds.deadline = DefaultBlobTimeout
	}
	if up.blobBounds.minRate == 0 {
		up.blobBounds.minRate = DefaultMinBytesPerSecond
	}
	up.blobBounds.stall, up.blobBounds.grace = up.timeout, rateGrace
	// Transient failures (connection errors, 502/503/504) are retried by
	// go-containerregistry's retry transport; 429 is not: the client gets
	// the upstream's Retry-After instead of trustproxy hammering on.
	up.rt = transport.NewRetry(base,
		transport.WithRetryStatusCodes(http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
		transport.WithRetryPredicate(func(err error) bool {
			return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
		}),
		transport.WithRetryBackoff(transport.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: cfg.Retries + 1}))
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

// transport returns the authenticated transport for pulling repo. Tokens
// are cached per repository scope inside it and refreshed by it.
func (u *upstream) transport(ctx context.Context, repo string) (*authTransport, error) {
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
	t = newAuthTransport(u, auth, "repository:"+repo+":pull")
	u.mu.Lock()
	if len(u.transports) >= maxCachedTransports {
		clear(u.transports)
	}
	u.transports[repo] = t
	u.mu.Unlock()
	return t, nil
}

// do sends a GET or HEAD for /v2/<repo>/<path>, following redirects (see
// redirect.go), and returns the final response for any status; the caller
// maps non-2xx. resp.Request.URL says which host answered.
func (u *upstream) do(ctx context.Context, method, repo, path string, hdr http.Header) (*http.Response, error) {
	t, err := u.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	path, query, _ := strings.Cut(path, "?")
	target := u.base.JoinPath("/v2/", repo, path)
	target.RawQuery = query
	resp, err := u.follow(ctx, t, method, target, hdr)
	if err != nil {
		var oe *ociError
		if errors.As(err, &oe) || ctx.Err() != nil {
			return nil, err
		}
		u.log.Debug("upstream request failed", zap.String("path", path), zap.Error(err))
		return nil, &ociError{Status: http.StatusBadGateway, Code: "UNKNOWN",
			Message: fmt.Sprintf("upstream %s unreachable: %s %s: %v", u.name, method, path, err)}
	}
	resp.Body = newStallGuard(resp.Body, u.timeout)
	return resp, nil
}

// baseTransport is the one HTTP transport all upstreams share: bounded
// connect and header waits, generous keep-alive pools for blob traffic.
// Compression stays off: the bytes hashed must be the identity bytes.
func baseTransport(timeout time.Duration) *http.Transport {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	rc.Close()
}
