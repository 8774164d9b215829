package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy"
	"github.com/trustproxy/trustproxy/trustfetch"
	"github.com/trustproxy/trustproxy/trustfetch/notary"
)

// reloadStatus is what /readyz and the metrics say about reloads.
type reloadStatus struct {
	generation int
	loaded     time.Time
	failedAt   time.Time
	failure    error // the last reload's, nil after a success
	metrics    *reloadMetrics
}

type reloadMetrics struct {
	reloads *prometheus.CounterVec
	last    prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustproxy", Name: "config_reloads_total",
			Help: "Configuration reloads (SIGHUP or file change) by result (success, failure).",
		}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "trustproxy", Name: "config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if the file was refused.",
		}),
	}
	m.last.Set(1)
	reg.MustRegister(m.reloads, m.last)
	return m
}

// policyVersion names a policy in audit lines: a hash of its rules with
// the contents of pinned keys (not their paths), so every replica with the
// same rules names them the same.
func policyVersion(pc policy.Config) string {
	b, _ := json.Marshal(pc)
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:6])
}

// sameTrust reports whether trust source name is configured identically in
// a and b (and state, where it keeps its data, did not move).
func sameTrust(a, b *fileConfig, name string) bool {
	ta, ok := a.Trust[name]
	return ok && a.State == b.State && reflect.DeepEqual(ta, b.Trust[name])
}

// notary returns the running Notary source called name, or nil.
func (in *instance) notary(name string) *notary.Source {
	for _, n := range in.notaries {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// restartOnly refuses a change the running process cannot make: the
// listeners (with their limits and client CAs), storage, state and logger
// are built once at start.
func restartOnly(cur, next *fileConfig) error {
	var changed []string
	for _, k := range []struct {
		key  string
		a, b any
	}{
		{"listen", cur.Listen, next.Listen},
		{"tls", cur.TLS, next.TLS},
		{"storage", cur.Storage, next.Storage},
		{"state", cur.State, next.State},
		{"log", cur.Log, next.Log},
		{"limits", cur.Limits, next.Limits},
		{"operator", cur.Operator, next.Operator},
		{"auth.mtls", mtlsOf(cur), mtlsOf(next)},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			changed = append(changed, k.key)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%s changed: it cannot change without a restart (restart trustproxy, or undo the change to reload the rest)",
			strings.Join(changed, ", "))
	}
	return nil
}

// reloadConfig re-reads the configuration file, validates all of it and
// builds the new policy, trust sources and upstreams beside the running
// ones; only when every part is built does it swap them in, at once, for
// new requests. A file that fails changes nothing.
func (in *instance) reloadConfig(ctx context.Context, live *proxy.Live) error {
	// One reload at a time; in.mu only while state changes, so /readyz
	// never waits for a reload's trust refresh.
	in.reloadMu.Lock()
	defer in.reloadMu.Unlock()
	err := in.swap(ctx, live)
	in.mu.Lock()
	defer in.mu.Unlock()
	m := in.status.metrics
	if err != nil {
		in.status.failedAt, in.status.failure = time.Now(), err
		m.reloads.WithLabelValues("failure").Inc()
		m.last.Set(0)
		in.log.Error("configuration reload refused; the running configuration stays in force",
			zap.String("config", in.path), zap.Int("generation", in.status.generation), zap.Error(err))
		return err
	}
	in.status.generation++
	in.status.loaded, in.status.failure = time.Now(), nil
	m.reloads.WithLabelValues("success").Inc()
	m.last.Set(1)
	in.log.Info("configuration reloaded", zap.String("config", in.path), zap.Int("generation", in.status.generation),
		zap.String("policy_version", in.policy.Version()))
	return nil
}

// swap does reloadConfig's work under in.reloadMu: only reloads change
// what it reads, and it commits under in.mu.
func (in *instance) swap(ctx context.Context, live *proxy.Live) error {
	if in.path == "" {
		return fmt.Errorf("reload: trustproxy was not started from a configuration file")
	}
	c, err := loadConfig(in.path)
	if err != nil {
		return err
	}
	if err := restartOnly(in.config, c); err != nil {
		return fmt.Errorf("config %s: %w", in.path, err)
	}
	trusts, notaries, sources, err := in.openTrusts(ctx, c, true)
	if err != nil {
		return fmt.Errorf("config %s: %w", in.path, err)
	}
	if err := loadSignedPolicy(ctx, c, trusts); err != nil {
		return fmt.Errorf("config %s: %w", in.path, err)
	}
	engine, err := in.newEngine(c, sources)
	var authority *access.Authority
	if err == nil {
		authority, err = c.accessAuthority()
	}
	if err == nil {
		var srv *proxy.Server
		if srv, err = live.Current().Reloaded(proxy.Parts{Upstreams: upstreamConfigs(c), Policy: engine, Access: authority}); err == nil {
			in.mu.Lock()
			in.commit(c, trusts, notaries, srv)
			in.access = authority
			live.Swap(srv)
			in.mu.Unlock()
			return nil
		}
	}
	// Nothing of the new sources runs yet; they only hold memory.
	return fmt.Errorf("config %s: %w", in.path, err)
}

// commit makes the new sources current: the replaced ones stop refreshing
// and give their metrics names to the new ones.
func (in *instance) commit(c *fileConfig, trusts map[string]*trustfetch.Repository, notaries []*notary.Source, srv *proxy.Server) {
	for name, old := range in.trusts {
		if trusts[name] != old {
			in.runs.stop(name)
			_ = old.Close()
		}
	}
	for _, old := range in.notaries {
		if n := findNotary(notaries, old.Name()); n != old {
			in.runs.stop(old.Name())
		}
	}
	for name, r := range trusts {
		if in.trusts[name] != r {
			if err := r.RegisterMetrics(in.registry); err != nil {
				in.log.Warn("trust repository metrics", zap.String("repository", name), zap.Error(err))
			}
			in.runs.start(name, r)
		}
	}
	for _, n := range notaries {
		if in.notary(n.Name()) != n {
			in.runs.start(n.Name(), n)
		}
	}
	in.config, in.trusts, in.notaries, in.server, in.policy = c, trusts, notaries, srv, srv.Policy()
}

// mtlsOf is the client CA part of auth: the TLS listener is built once.
func mtlsOf(c *fileConfig) *mtlsConfig {
	if c.Auth == nil {
		return nil
	}
	return c.Auth.MTLS
}

func findNotary(ns []*notary.Source, name string) *notary.Source {
	for _, n := range ns {
		if n.Name() == name {
			return n
		}
	}
	return nil
}

// trustReady is /readyz about the trust repositories in force.
func (in *instance) trustReady() error {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return trustReadiness(in.trusts)
}

// reloadDetail is /readyz's line about the configuration in force and the
// last reload that failed. A refused file does not make the proxy unready:
// the previous configuration still serves.
func (in *instance) reloadDetail() string {
	in.mu.RLock()
	defer in.mu.RUnlock()
	st := in.status
	s := fmt.Sprintf("config: generation %d (policy %s) loaded %s\n", st.generation, in.policy.Version(), st.loaded.UTC().Format(time.RFC3339))
	if st.failure != nil {
		s += fmt.Sprintf("config: reload at %s refused, generation %d still serves: %v\n", st.failedAt.UTC().Format(time.RFC3339), st.generation, st.failure)
	}
	return s
}

// trustRuns are the refresh loops of the running trust sources, each
// stoppable on its own.
type trustRuns struct {
	ctx   context.Context
	mu    sync.Mutex
	stops map[string]context.CancelFunc
}

func newTrustRuns(ctx context.Context) *trustRuns {
	return &trustRuns{ctx: ctx, stops: map[string]context.CancelFunc{}}
}

func (t *trustRuns) start(name string, r interface{ Run(context.Context) }) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithCancel(t.ctx)
	t.mu.Lock()
	t.stops[name] = cancel
	t.mu.Unlock()
	go r.Run(ctx)
}

func (t *trustRuns) stop(name string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cancel := t.stops[name]; cancel != nil {
		cancel()
		delete(t.stops, name)
	}
}
