package proxy

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"
)

// Limits bound what one client can take from the server.
type Limits struct {
	// HeaderTimeout closes connections whose request headers have not
	// arrived in time (slow-header clients). Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 2m.
	IdleTimeout time.Duration
	// MaxConnections caps concurrent client connections; further ones
	// wait in the kernel's accept queue. 0: unlimited.
	MaxConnections int
	// RequestsPerSecond and Burst rate-limit each principal (each address
	// for anonymous clients); over the limit a request gets 429
	// TOOMANYREQUESTS with Retry-After. 0: unlimited.
	RequestsPerSecond float64
	Burst             int
}

func (l Limits) withDefaults() Limits {
	if l.HeaderTimeout == 0 {
		l.HeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 2 * time.Minute
	}
	if l.RequestsPerSecond > 0 && l.Burst <= 0 {
		l.Burst = max(1, int(math.Ceil(l.RequestsPerSecond)))
	}
	return l
}

// NewHTTPServer is the http.Server trustproxy serves h with: header and
// idle deadlines from l. There is no whole-request read deadline: a blob
// response may take as long as the client needs, and request bodies are
// refused before they are read (see refuseBody).
func NewHTTPServer(h http.Handler, l Limits, log *zap.Logger) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.HeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}

// LimitListener applies l.MaxConnections to ln.
func LimitListener(ln net.Listener, l Limits) net.Listener {
	if l.MaxConnections <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, l.MaxConnections)
}

// refuseBody answers a request that carries a body: the registry pull API
// reads none. The connection is closed at once rather than drained, so a
// client dripping a long body holds nothing (net/http would otherwise read
// up to 256 KiB of it, at the client's pace, before the next request).
func refuseBody(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 {
		return false
	}
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	writeError(w, r, &ociError{Status: http.StatusBadRequest, Code: "UNSUPPORTED",
		Message: fmt.Sprintf("trustproxy: %s requests must not carry a body (the pull API reads none)", r.Method)})
	return true
}

// rateLimiter keeps one token bucket per key (principal or address). The
// least recently seen keys are forgotten first, which only ever gives a
// client a fresh, full bucket.
type rateLimiter struct {
	limit   rate.Limit
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

func newRateLimiter(l Limits, now func() time.Time) *rateLimiter {
	if l.RequestsPerSecond <= 0 {
		return nil
	}
	c, _ := lru.New[string, *rate.Limiter](65536)
	return &rateLimiter{limit: rate.Limit(l.RequestsPerSecond), burst: l.Burst, buckets: c, now: now}
}

// allow takes a token for key, or says how long to wait for one.
func (rl *rateLimiter) allow(key string) (bool, time.Duration) {
	if rl == nil {
		return true, 0
	}
	lim, ok := rl.buckets.Get(key)
	if !ok {
		lim = rate.NewLimiter(rl.limit, rl.burst)
		rl.buckets.Add(key, lim)
	}
	now := rl.now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func errTooManyRequests(who string, wait time.Duration) *ociError {
	secs := int(math.Ceil(wait.Seconds()))
	return &ociError{Status: http.StatusTooManyRequests, Code: "TOOMANYREQUESTS", RetryAfter: strconv.Itoa(max(secs, 1)),
		Message: fmt.Sprintf("trustproxy: too many requests from %s; retry in %ds", who, max(secs, 1))}
}
