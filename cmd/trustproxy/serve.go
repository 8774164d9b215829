package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/proxy"
)

func newServeCmd() *cobra.Command {
	var configPath string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the proxy",
		Long: `Run the proxy with the configuration in FILE (YAML; every key is in the
README's configuration reference). It stops gracefully on SIGINT or SIGTERM.
On SIGHUP it reloads FILE: policy, trust repositories and upstreams change
for new requests at once, requests in flight finish under the old ones; a
file that fails validation changes nothing (README, "Running policy").
With --watch it also reloads when FILE's content changes.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The listener opens at once: a trust server that is down or
			// stalls never keeps it closed (persisted trust data serves).
			in, err := openInstance(ctx, configPath, func(c *fileConfig) { c.backgroundTrust = true })
			if err != nil {
				return err
			}
			defer func() { _ = in.log.Sync() }()
			in.watchEvery = watch
			ln, err := net.Listen("tcp", in.config.Listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", in.config.Listen, err)
			}
			return serveOn(ctx, in, ln, in.config.TLS)
		},
	}
	addConfigFlag(cmd, &configPath)
	cmd.Flags().DurationVar(&watch, "watch", 0, "also reload when the configuration file's content changes, checked every `INTERVAL` (e.g. 5s; 0: SIGHUP only)")
	return cmd
}

// serveOn serves until ctx is done, then shuts down gracefully.
func serveOn(ctx context.Context, in *instance, ln net.Listener, tc *tlsConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in.runTrust(ctx)
	live := proxy.NewLive(in.server)
	in.watchReload(ctx, live)
	limits := in.config.proxyLimits()
	hs := proxy.NewHTTPServer(live, limits, in.log)
	ln = proxy.LimitListener(ln, limits)
	scheme := "http"
	if tc != nil {
		cert, err := tls.LoadX509KeyPair(tc.Cert, tc.Key)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if in.access != nil && in.access.ClientCAs() != nil {
			hs.TLSConfig.ClientCAs, hs.TLSConfig.ClientAuth = in.access.ClientCAs(), tls.VerifyClientCertIfGiven
		}
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
	}
	if addr := in.config.Operator.Listen; addr != "" {
		ops, err := serveOperator(in, addr)
		if err != nil {
			return err
		}
		defer ops.Close()
	}
	in.log.Info("trustproxy listening", zap.String("address", scheme+"://"+ln.Addr().String()))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	in.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// serveOperator serves the operator endpoints on their own listener.
func serveOperator(in *instance, addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("operator.listen %s: %w", addr, err)
	}
	hs := proxy.NewHTTPServer(in.server.OperatorHandler(), proxy.Limits{}, in.log)
	in.log.Info("operator endpoints listening", zap.String("address", "http://"+ln.Addr().String()))
	go func() { _ = hs.Serve(ln) }()
	return hs, nil
}
