package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
}

func newLogger(c logConfig) (*zap.Logger, error) {
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
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
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

	trusts := map[string]*trustfetch.Repository{}
	sources := map[string]policy.TrustSource{}
	var notaries []*notary.Source
	for name, t := range c.Trust {
		if t.Notary != nil {
			n, err := openNotary(name, t.Notary, c.State, log)
			if err != nil {
				return nil, err
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
		r, err := trustfetch.Open(ctx, cfg, trustfetch.Options{HTTPClient: client, Logger: log.Named("trust"), Registerer: reg,
			Background: c.backgroundTrust})
		if err != nil {
			return nil, fmt.Errorf("trust.%s: %w", name, err)
		}
		trusts[name], sources[name] = r, r
		if wrap != nil {
			sources[name] = wrap(r)
		}
	}

	pc, err := buildPolicy(c)
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(pc, sources, policy.Options{Logger: log})
	if err != nil {
		return nil, err
	}

	store, err := cache.NewFromConfig(ctx, c.Storage.Driver, c.Storage.Parameters, cache.Options{
		MaxSize: c.Storage.MaxSize, SpoolDir: c.Storage.SpoolDir, Logger: log.Named("cache"), Registerer: reg,
		LeaseTTL: time.Duration(c.Storage.DownloadLease),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}

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
	authority, err := c.accessAuthority()
	if err != nil {
		return nil, err
	}
	srv, err := proxy.New(proxy.Options{
		Upstreams: ups, Policy: engine, Cache: store, Logger: log, Registry: reg,
		Access: authority, Limits: c.proxyLimits(),
		Ready: func() error { return trustReadiness(trusts) },
	})
	if err != nil {
		return nil, err
	}
	return &instance{config: c, server: srv, policy: engine, access: authority, cache: store, trusts: trusts, notaries: notaries, log: log}, nil
}

// buildPolicy maps the policy section onto policy.Config, reading pinned
// in-toto layout keys.
func buildPolicy(c *fileConfig) (policy.Config, error) {
	pc := policy.Config{Default: c.Policy.Default}
	for i, rc := range c.Policy.Rules {
		r := policy.Rule{Name: rc.Name, Match: rc.Match, Mode: policy.Mode(rc.Mode), Trust: rc.Trust,
			TrustName: rc.TrustName, Require: rc.Require,
			InToto: policy.InTotoConfig{Subject: rc.InToto.Subject, Parameters: rc.InToto.Parameters, Limits: rc.InToto.Limits}}
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

// runTrust starts each trust repository's refresh loop.
func (in *instance) runTrust(ctx context.Context) {
	for _, t := range in.trusts {
		go t.Run(ctx)
	}
	for _, n := range in.notaries {
		go n.Run(ctx)
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
	return assemble(ctx, c, log)
}

// addConfigFlag adds the required --config flag of the commands that run
// from a configuration file.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "", "configuration `FILE` (YAML)")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
}
