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
)

func newServeCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the proxy",
		Long: `Run the proxy with the configuration in FILE (YAML; every key is in the
README's configuration reference). It stops gracefully on SIGINT or SIGTERM.`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			in, err := openInstance(ctx, configPath, nil)
			if err != nil {
				return err
			}
			defer func() { _ = in.log.Sync() }()
			ln, err := net.Listen("tcp", in.config.Listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", in.config.Listen, err)
			}
			return serveOn(ctx, in, ln, in.config.TLS)
		},
	}
	addConfigFlag(cmd, &configPath)
	return cmd
}

// serveOn serves until ctx is done, then shuts down gracefully.
func serveOn(ctx context.Context, in *instance, ln net.Listener, tc *tlsConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in.runTrust(ctx)
	hs := &http.Server{
		Handler:           in.server,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(in.log.Named("http")),
	}
	scheme := "http"
	if tc != nil {
		cert, err := tls.LoadX509KeyPair(tc.Cert, tc.Key)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
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
