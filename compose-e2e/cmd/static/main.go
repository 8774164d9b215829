// Command static serves a directory over plain HTTP: the compose stack's TUF
// repository server. It exists because the stack is built FROM scratch (no
// base image can be pulled here), so no ready-made web server is at hand.
//
//	static -addr :8080 -root /srv
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "listen `ADDRESS`")
	root := flag.String("root", "/srv", "`DIR` to serve")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *root); err != nil {
		fmt.Fprintf(os.Stderr, "static: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, root string) error {
	if fi, err := os.Stat(root); err != nil {
		return fmt.Errorf("root: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("root %s is not a directory", root)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, ln, root)
}

// serve serves root on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener, root string) error {
	files := http.FileServer(http.Dir(root))
	hs := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// TUF clients must see every new timestamp: no caching.
			w.Header().Set("Cache-Control", "no-store")
			files.ServeHTTP(w, r)
		}),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Printf("static: serving %s on %s", root, ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
