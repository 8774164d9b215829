package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trustproxy/trustproxy/proxy"
)

// watchReload reloads the configuration on every SIGHUP until ctx is done.
// The signal is subscribed before watchReload returns, so a SIGHUP sent
// once the proxy listens never takes the default action (exit).
func (in *instance) watchReload(ctx context.Context, live *proxy.Live) {
	if in.path == "" {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = in.reloadConfig(ctx, live) // logged, counted and on /readyz
			}
		}
	}()
}
