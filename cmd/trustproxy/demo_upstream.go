package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // the "inmemory" driver factory
	"github.com/sirupsen/logrus"
)

// demoRegistry is the demo's upstream: distribution's registry (the code
// behind its `registry` binary, used as a library) holding its content in
// memory, served on loopback by a plain http.Server. It is production code,
// so the product binary links no test helpers for it.
type demoRegistry struct {
	// URL is the base URL (http://127.0.0.1:port), Host its host:port.
	URL, Host string
	srv       *http.Server
	cancel    context.CancelFunc
}

func startDemoRegistry(ctx context.Context) (*demoRegistry, error) {
	// distribution logs every request at info through logrus' process-wide
	// logger; the demo's own output is the proxy's, so only its warnings show.
	logrus.SetLevel(logrus.WarnLevel)
	cfg := &configuration.Configuration{Storage: configuration.Storage{
		"inmemory":    configuration.Parameters{},
		"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
	}}
	cfg.HTTP.Secret = "trustproxy-demo"
	cfg.Log.AccessLog.Disabled = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &demoRegistry{
		URL: "http://" + ln.Addr().String(), Host: ln.Addr().String(), cancel: cancel,
		srv: &http.Server{Handler: handlers.NewApp(ctx, cfg), ReadHeaderTimeout: 30 * time.Second},
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logrus.WithError(err).Warn("demo upstream registry stopped")
		}
	}()
	return r, nil
}

func (r *demoRegistry) Close() {
	_ = r.srv.Close()
	r.cancel()
}
