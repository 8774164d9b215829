package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trustproxy serve --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" {
		fs.Usage()
		return errConfigRequired
	}
	c, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log, err := newLogger(c.Log)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	in, err := assemble(ctx, c, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Listen, err)
	}
	return serveOn(ctx, in, ln, c.TLS)
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
