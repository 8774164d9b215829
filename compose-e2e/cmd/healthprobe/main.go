// Command healthprobe is the HEALTHCHECK of images built FROM scratch, which
// have no shell and no curl: it GETs a URL and exits 0 on a 2xx answer, 1
// otherwise (docker's healthy/unhealthy).
//
//	healthprobe [-timeout 3s] [-insecure] http://127.0.0.1:5000/healthz
//
// -insecure skips certificate verification, for a proxy serving TLS with a
// certificate for its public name: the probe only asks "are you up?" over
// loopback and trusts nothing it receives.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "give up after `DURATION`")
	insecure := flag.Bool("insecure", false, "do not verify the server's TLS certificate")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: healthprobe [-timeout D] [-insecure] URL")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := probe(ctx, flag.Arg(0), *insecure); err != nil {
		fmt.Fprintf(os.Stderr, "healthprobe: %v\n", err)
		os.Exit(1)
	}
}

func probe(ctx context.Context, url string, insecure bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the probe asks this container, never a proxy from the environment
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // see the package comment
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("get %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
