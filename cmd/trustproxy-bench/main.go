//go:build bench

// Command trustproxy-bench runs trustproxy side by side with the upstream
// registry it fronts and with distribution's own pull-through proxy, on
// loopback, and reports medians and ratios (see bench/README.md).
//
//	go run -tags bench ./cmd/trustproxy-bench [-quick] [-out results.json]
//
// It builds trustproxy, obtains distribution's registry binary (v3.1.2),
// starts every server as a child process in a temporary directory, seeds
// the upstream with go-containerregistry, signs the images into a real TUF
// repository with the publish package, runs the scenarios, prints a table,
// writes JSON, and removes everything it started or wrote (except -out).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("trustproxy-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "small sizes and few runs: a smoke test of the suite, not a measurement")
	out := fs.String("out", "", "write the JSON report to this file")
	registry := fs.String("registry", "", "distribution registry binary (default: $TRUSTPROXY_BENCH_REGISTRY, else go install "+registryModule+"@"+registryVersion+" into the user cache)")
	profile := fs.String("profile", "", "directory for CPU profiles of trustproxy per scenario (builds trustproxy with a pprof hook through a go build -overlay; nothing in the tree changes)")
	overlay := fs.String("overlay", "", "build trustproxy with this `go build -overlay` file: measure a patched copy of a file without touching the tree")
	keep := fs.Bool("keep", false, "keep the work directory (logs, configs, storage) for inspection")
	only := fs.String("only", "", "comma-separated scenarios to run (default all): "+scenarioNames())
	timeout := fs.Duration("timeout", 20*time.Minute, "stop the whole run after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	s := fullSettings()
	if *quick {
		s = quickSettings()
	}
	s.Registry, s.ProfileDir, s.Keep, s.Overlay = *registry, *profile, *keep, *overlay
	if *only != "" {
		sel, err := parseOnly(*only)
		if err != nil {
			fmt.Fprintln(stderr, "trustproxy-bench:", err)
			return 2
		}
		s.Only = sel
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := runSuite(ctx, s, stderr)
	if rep != nil {
		printTable(stdout, rep)
		if *out != "" {
			if werr := writeReport(*out, rep); werr != nil {
				fmt.Fprintln(stderr, "trustproxy-bench:", werr)
				return 1
			}
			fmt.Fprintf(stderr, "report written to %s\n", *out)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "trustproxy-bench:", err)
		return 1
	}
	return 0
}
