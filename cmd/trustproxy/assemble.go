package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trustproxy/trustproxy/access"
	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy"
	"github.com/trustproxy/trustproxy/trustfetch"
	"github.com/trustproxy/trustproxy/trustfetch/notary"
)

// instance is a fully assembled trustproxy: what serve runs and check asks.
// A configuration reload (reload.go) replaces config, server, policy,
// trusts and notaries under mu.
type instance struct {
	config *fileConfig
	server *proxy.Server
	policy *policy.Engine
	access *access.Authority // nil: no client authentication
	cache  *cache.Cache
	trusts map[string]*trustfetch.Repository
	// notaries load GUNs on demand, so they do not hold up readiness.
	notaries []*notary.Source
	log      *zap.Logger

	path          string // the configuration file, "" when assembled from memory
	registry      *prometheus.Registry
	client        *http.Client
	policyMetrics *policy.Metrics
	runs          *trustRuns    // set by runTrust
	watchEvery    time.Duration // serve --watch: poll the file for changes; 0: SIGHUP only

	reloadMu sync.Mutex   // one reload at a time (reload.go)
	mu       sync.RWMutex // guards what a reload replaces, and status
	status   reloadStatus
}

func newLogger(c logConfig) (*zap.Logger, error) { return newLoggerTo(c, "stderr") }

// newLoggerTo is newLogger writing to path (tests record a run's log).
func newLoggerTo(c logConfig, path string) (*zap.Logger, error) {
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Sampling = nil // an audit line must never be sampled away
	level := zapcore.InfoLevel
	if c.Level != "" {
		if err := level.Set(c.Level); err != nil {
			return nil, err
		}
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.OutputPaths, zc.ErrorOutputPaths = []string{path}, []string{path}
	return zc.Build()
}

// assemble builds every part from the configuration. Trust repositories get
// one refresh attempt each; a trust server that is down does not stop
// start-up (the repository vouches for nothing until it answers).
func assemble(ctx context.Context, c *fileConfig, log *zap.Logger) (*instance, error) {
	return assembleWith(ctx, c, log, nil)
}

// assembleWith is assemble with each trust source wrapped before policy
// uses it (mirror export records the target files policy reads).
func assembleWith(ctx context.Context, c *fileConfig, log *zap.Logger, wrap func(policy.TrustSource) policy.TrustSource) (*instance, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	client := &http.Client{Timeout: time.Minute}

	in := &instance{config: c, log: log, registry: reg, client: client, policyMetrics: policy.NewMetrics(reg),
		status: reloadStatus{generation: 1, loaded: time.Now(), metrics: newReloadMetrics(reg)}}
	var sources map[string]policy.TrustSource
	var err error
	in.trusts, in.notaries, sources, err = in.openTrusts(ctx, c, false)
	if err != nil {
		return nil, err
	}
	if err := loadSignedPolicy(ctx, c, in.trusts); err != nil {
		return nil, err
	}
	if wrap != nil {
		for name, r := range in.trusts {
			sources[name] = wrap(r)
		}
	}

	engine, err := in.newEngine(c, sources)
	if err != nil {
		return nil, err
	}

	store, err := cache.NewFromConfig(ctx, c.Storage.Driver, c.Storage.Parameters, cache.Options{
		MaxSize: c.Storage.MaxSize, SpoolDir: c.Storage.SpoolDir, Logger: log.Named("cache"), Registerer: reg,
		LeaseTTL: time.Duration(c.Storage.DownloadLease), ManifestMemory: c.Storage.cacheManifestMemory(),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}

	authority, err := c.accessAuthority()
	if err != nil {
		return nil, err
	}
	srv, err := proxy.New(proxy.Options{
		Upstreams: upstreamConfigs(c), Policy: engine, Cache: store, Logger: log, Registry: reg,
		Access: authority, Limits: c.proxyLimits(),
		Ready: in.trustReady, Detail: in.reloadDetail,
	})
	if err != nil {
		return nil, err
	}
	in.server, in.policy, in.access, in.cache = srv, engine, authority, store
	return in, nil
}

// openTrusts opens every trust source of c. When reloading, a source whose
// configuration equals the one in runs is reused as it is, and the others
// are opened without metrics (the reload registers them once the old ones
// are gone).
func (in *instance) openTrusts(ctx context.Context, c *fileConfig, reloading bool) (map[string]*trustfetch.Repository, []*notary.Source, map[string]policy.TrustSource, error) {
	trusts := map[string]*trustfetch.Repository{}
	sources := map[string]policy.TrustSource{}
	var notaries []*notary.Source
	for name, t := range c.Trust {
		if reloading && sameTrust(in.config, c, name) {
			if r := in.trusts[name]; r != nil {
				trusts[name], sources[name] = r, r
				continue
			}
			if n := in.notary(name); n != nil {
				notaries, sources[name] = append(notaries, n), n
				continue
			}
		}
		if t.Notary != nil {
			n, err := openNotary(name, t.Notary, c.State, in.log)
			if err != nil {
				return nil, nil, nil, err
			}
			notaries, sources[name] = append(notaries, n), n
			continue
		}
		cfg := trustfetch.Config{
			Name: name, Metadata: t.Metadata, Targets: t.Targets, Root: t.Root,
			StateDir: filepath.Join(c.State, "trust", name), Refresh: time.Duration(t.Refresh),
			MaxMetadataBytes: t.MaxMetadataBytes, MaxTargetBytes: t.MaxTargetBytes,
			AllowExpiredFor: time.Duration(t.AllowExpiredFor),
		}
		var reg prometheus.Registerer = in.registry
		if reloading {
			reg = nil
		}
		r, err := trustfetch.Open(ctx, cfg, trustfetch.Options{HTTPClient: in.client, Logger: in.log.Named("trust"), Registerer: reg,
			Background: c.backgroundTrust})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("trust.%s: %w", name, err)
		}
		trusts[name], sources[name] = r, r
	}
	return trusts, notaries, sources, nil
}

// newEngine builds the policy engine of c over sources.
func (in *instance) newEngine(c *fileConfig, sources map[string]policy.TrustSource) (*policy.Engine, error) {
	pc, err := buildPolicy(c)
	if err != nil {
		return nil, err
	}
	version := policyVersion(pc)
	if c.signed != nil {
		version = c.signed.version
	}
	return policy.New(pc, sources, policy.Options{Logger: in.log, Version: version, Metrics: in.policyMetrics})
}

// upstreamConfigs maps the upstreams section onto the proxy's.
func upstreamConfigs(c *fileConfig) []proxy.UpstreamConfig {
	var ups []proxy.UpstreamConfig
	for _, u := range c.Upstreams {
		retries := 2
		if u.Retries != nil {
			retries = *u.Retries
		}
		ups = append(ups, proxy.UpstreamConfig{Name: u.Name, URL: u.URL, Default: u.Default,
			Username: u.Auth.Username, Password: u.Auth.Password, Keychain: u.Auth.Keychain,
			Timeout: time.Duration(u.Timeout), Retries: retries,
			MaxRedirects: u.MaxRedirects, MaxBlobBytes: int64(u.MaxBlobBytes), BlobTimeout: time.Duration(u.BlobTimeout),
			MinBytesPerSecond: int64(u.MinBytesPerSecond), Offline: u.Offline})
	}
	return ups
}

// buildPolicy maps the policy section onto policy.Config, reading pinned
// in-toto layout keys.
func buildPolicy(c *fileConfig) (policy.Config, error) {
	pc := policy.Config{Default: c.Policy.Default}
	for i, rc := range c.Policy.Rules {
		r := policy.Rule{Name: rc.Name, Match: rc.Match, Mode: policy.Mode(rc.Mode), Trust: rc.Trust,
			TrustName: rc.TrustName, Require: rc.Require,
			Attachments: policy.Attachments{Disabled: rc.Attachments.Disabled, ArtifactTypes: rc.Attachments.ArtifactTypes},
			InToto:      policy.InTotoConfig{Subject: rc.InToto.Subject, Parameters: rc.InToto.Parameters, Limits: rc.InToto.Limits}}
		for _, kf := range rc.InToto.LayoutKeys {
			b, err := os.ReadFile(kf)
			if err != nil {
				return pc, fmt.Errorf("policy.rules[%d].inToto.layoutKeys: %w", i, err)
			}
			r.InToto.LayoutKeys = append(r.InToto.LayoutKeys, b)
		}
		pc.Rules = append(pc.Rules, r)
	}
	return pc, nil
}

// runTrust starts each trust repository's refresh loop; a reload stops
// the loops of the sources it replaces (reload.go).
func (in *instance) runTrust(ctx context.Context) {
	in.runs = newTrustRuns(ctx)
	for name, t := range in.trusts {
		in.runs.start(name, t)
	}
	for _, n := range in.notaries {
		in.runs.start(n.Name(), n)
	}
}

// openInstance is the one path from a configuration file to an assembled
// trustproxy, shared by serve, check and demo: load the configuration, let
// the command adjust it (tweak may be nil), build the logger, assemble.
func openInstance(ctx context.Context, configPath string, tweak func(*fileConfig)) (*instance, error) {
	c, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	if tweak != nil {
		tweak(c)
	}
	log, err := newLogger(c.Log)
	if err != nil {
		return nil, err
	}
	in, err := assemble(ctx, c, log)
	if err != nil {
		return nil, err
	}
	in.path = configPath
	return in, nil
}

// addConfigFlag adds the required --config flag of the commands that run
// from a configuration file.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "", "configuration `FILE` (YAML)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
}
