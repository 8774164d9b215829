package notary

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/trustfetch"
)

// maxGUNs bounds the GUNs a Source tracks: clients choose repository names,
// so GUNs that never verified are forgotten first when it is reached.
const maxGUNs = 4096

// retryFailed is how long a GUN whose load failed answers with that
// failure before a request may try the server again; Run retries anyway.
const retryFailed = 5 * time.Second

// Options carries the injected dependencies. Every field may be left zero.
type Options struct {
	// HTTPClient's Transport talks to the Notary server; nil means a
	// private transport (http.DefaultTransport's settings, never shared).
	HTTPClient *http.Client
	Logger     *zap.Logger
	// Now is the clock for expiry; nil means time.Now.
	Now func() time.Time
}

// Source is one Notary server: the verified trust data of every GUN asked
// for so far. It is safe for concurrent use.
type Source struct {
	cfg resolved
	log *zap.Logger
	now func() time.Time
	rt  http.RoundTripper

	mu      sync.Mutex
	guns    map[string]*gunState
	maxGUNs int
}

// gunState is one GUN's verified view.
type gunState struct {
	gun     string
	pin     resolvedPin
	sem     chan struct{} // serializes loads; a channel so waiting honours ctx
	current atomic.Pointer[trustfetch.Index]

	mu       sync.Mutex
	lastErr  error // the last load's failure, nil after a success
	failedAt time.Time
	skipped  []Skipped // of the current index
}

// Open validates cfg. It contacts no server: GUNs are loaded when first
// asked for.
func Open(cfg Config, opts Options) (*Source, error) {
	rc, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: rc, log: opts.Logger, now: opts.Now, guns: map[string]*gunState{}, maxGUNs: maxGUNs}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.With(zap.String("notary", rc.Name))
	if s.now == nil {
		s.now = time.Now
	}
	switch {
	case opts.HTTPClient != nil && opts.HTTPClient.Transport != nil:
		s.rt = opts.HTTPClient.Transport
	case rc.roots != nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: rc.roots, MinVersion: tls.VersionTLS12}
		s.rt = tr
	default:
		s.rt = http.DefaultTransport.(*http.Transport).Clone()
	}
	return s, nil
}

// Name returns the trust source name from the configuration.
func (s *Source) Name() string { return s.cfg.Name }

// Index fails: a Notary server's trust data is per GUN (use IndexFor).
func (s *Source) Index() (*trustfetch.Index, error) {
	return nil, fmt.Errorf("notary trust source %q keeps trust data per GUN: ask for a repository's GUN", s.cfg.Name)
}

// FetchTarget fails: Notary targets name registry content, never files
// the trust server holds.
func (s *Source) FetchTarget(ctx context.Context, t trustfetch.Target) ([]byte, error) {
	return nil, fmt.Errorf("notary trust source %q holds no target files (target %q)", s.cfg.Name, t.Name)
}

// IndexFor returns the verified index of gun, loading it from the server
// the first time. Its targets are named "<gun>:<tag>". It fails with a
// *trustfetch.UnavailableError when the GUN vouches for nothing: no pin
// matches it, it has no trust data, its trust data does not verify, or
// what verified has expired and no refresh has replaced it.
func (s *Source) IndexFor(ctx context.Context, gun string) (*trustfetch.Index, error) {
	st, err := s.state(gun)
	if err != nil {
		return nil, err
	}
	if ix := st.current.Load(); ix != nil {
		return s.unexpired(st, ix)
	}
	st.mu.Lock()
	recent := st.lastErr != nil && s.now().Sub(st.failedAt) < retryFailed
	st.mu.Unlock()
	if !recent {
		_ = s.refreshGUN(ctx, st, true)
	}
	if ix := st.current.Load(); ix != nil {
		return s.unexpired(st, ix)
	}
	return nil, s.unavailable(st, trustfetch.ErrNoTrustData, nil)
}

// Skipped lists the targets of gun's current index that it leaves out (a
// tag signed only by another delegation, a target without sha256).
func (s *Source) Skipped(gun string) []Skipped {
	s.mu.Lock()
	st := s.guns[gun]
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.skipped)
}

func (s *Source) state(gun string) (*gunState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.guns[gun]; ok {
		return st, nil
	}
	pin, ok := s.cfg.pinFor(gun)
	if !ok {
		return nil, &trustfetch.UnavailableError{Repository: s.repoName(gun), Reason: trustfetch.ErrNoTrustData,
			LastRefresh: fmt.Errorf("no pin in notary trust source %q matches GUN %q (trust is never established on first use)", s.cfg.Name, gun)}
	}
	if len(s.guns) >= s.maxGUNs {
		for g, old := range s.guns {
			if old.current.Load() == nil {
				delete(s.guns, g)
			}
		}
		if len(s.guns) >= s.maxGUNs {
			return nil, fmt.Errorf("notary trust source %q already tracks %d verified GUNs; not loading %q", s.cfg.Name, s.maxGUNs, gun)
		}
	}
	st := &gunState{gun: gun, pin: pin, sem: make(chan struct{}, 1)}
	s.guns[gun] = st
	return st, nil
}

func (s *Source) repoName(gun string) string { return s.cfg.Name + " (GUN " + gun + ")" }

// unexpired enforces freeze protection between refreshes.
func (s *Source) unexpired(st *gunState, ix *trustfetch.Index) (*trustfetch.Index, error) {
	if !s.now().Before(ix.Expires()) {
		return nil, s.unavailable(st, trustfetch.ErrExpired, ix)
	}
	return ix, nil
}

func (s *Source) unavailable(st *gunState, reason error, ix *trustfetch.Index) error {
	e := &trustfetch.UnavailableError{Repository: s.repoName(st.gun), Reason: reason}
	if ix != nil {
		e.Expired, e.Role = ix.Expires(), ix.ExpiresRole()
	}
	st.mu.Lock()
	e.LastRefresh = st.lastErr
	st.mu.Unlock()
	return e
}

// Refresh reloads every GUN that has verified so far. A GUN whose refresh
// fails keeps its last verified index until that expires. GUNs that never
// verified (unsigned, wrong root) are retried when a request asks for them,
// at most every few seconds, not here.
func (s *Source) Refresh(ctx context.Context) error {
	s.mu.Lock()
	states := make([]*gunState, 0, len(s.guns))
	for _, st := range s.guns {
		if st.current.Load() != nil {
			states = append(states, st)
		}
	}
	s.mu.Unlock()
	sort.Slice(states, func(i, j int) bool { return states[i].gun < states[j].gun })
	var errs []error
	for _, st := range states {
		if err := s.refreshGUN(ctx, st, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run refreshes every Refresh interval until ctx is done.
func (s *Source) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = s.Refresh(ctx)
	}
}

// refreshGUN loads st; with firstOnly, not if a concurrent first load
// already succeeded while this one waited.
func (s *Source) refreshGUN(ctx context.Context, st *gunState, firstOnly bool) error {
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-st.sem }()
	if firstOnly && st.current.Load() != nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ix, skipped, err := s.load(lctx, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil {
		st.lastErr, st.failedAt = err, s.now()
		s.log.Warn("notary refresh failed", zap.String("gun", st.gun), zap.Error(err))
		return err
	}
	st.lastErr, st.skipped = nil, skipped
	st.current.Store(ix)
	s.log.Info("notary trust data verified", zap.String("gun", st.gun), zap.Int("targets", ix.Len()),
		zap.Int64("timestamp_version", ix.Versions().Timestamp), zap.Time("expires", ix.Expires()))
	return nil
}
