package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: trust corp: no data\n"))
		default:
			http.NotFound(w, r)
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	tls := httptest.NewTLSServer(handler)
	defer tls.Close()
	closed := httptest.NewServer(handler)
	closed.Close()

	for _, tc := range []struct {
		name     string
		url      string
		insecure bool
		wantErr  string // "" for healthy
	}{
		{"healthy", plain.URL + "/healthz", false, ""},
		{"503 with reason", plain.URL + "/readyz", false, "503 Service Unavailable: not ready: trust corp"},
		{"404", plain.URL + "/nothing", false, "404"},
		{"down", closed.URL + "/healthz", false, "connect"},
		{"tls unverified cert", tls.URL + "/healthz", false, "certificate"},
		{"tls -insecure", tls.URL + "/healthz", true, ""},
		{"bad url", "://", false, "request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := probe(ctx, tc.url, tc.insecure)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe: %v; want healthy", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe: %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
