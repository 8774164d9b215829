package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/trustproxy/trustproxy/proxy"
)

// watchReload reloads the configuration on every SIGHUP, and with
// in.watchEvery whenever the file's content changes, until ctx is done.
// The signal is subscribed before watchReload returns, so a SIGHUP sent
// once the proxy listens never takes the default action (exit).
func (in *instance) watchReload(ctx context.Context, live *proxy.Live) {
	if in.path == "" {
		return
	}
	in.watchSignedPolicy(ctx, live)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	last := fileHash(in.path)
	go func() {
		defer signal.Stop(hup)
		var tick <-chan time.Time
		if in.watchEvery > 0 {
			t := time.NewTicker(in.watchEvery)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			case <-tick:
				// A changed file is reloaded once; a refused one again
				// only when it changes again.
				h := fileHash(in.path)
				if h == last || h == "" {
					continue
				}
				last = h
			}
			_ = in.reloadConfig(ctx, live) // logged, counted and on /readyz
		}
	}()
}

// fileHash is the sha256 of the file at path, "" if it cannot be read
// (e.g. mid-replacement by an editor).
func fileHash(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
