package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: trustproxy check --config FILE <upstream>/<repository>(:<tag>|@<digest>)")
		fmt.Fprintln(stderr, "Prints the decision a pull of the reference would get, and why, without serving.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return errConfigRequired
	}
	c, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	c.Log.Level = "warn"
	log, err := newLogger(c.Log)
	if err != nil {
		return err
	}
	in, err := assemble(ctx, c, log)
	if err != nil {
		return err
	}
	res, err := in.server.Check(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if res.Status == 200 {
		fmt.Fprintf(stdout, "ALLOW %s\n  digest:     %s\n  media type: %s\n", fs.Arg(0), res.Digest, res.Type)
		if res.Warning != "" {
			fmt.Fprintf(stdout, "  warning:    %s\n", res.Warning)
		}
		return nil
	}
	fmt.Fprintf(stdout, "DENY %s\n  status: %d %s\n  reason: %s\n", fs.Arg(0), res.Status, res.Code, res.Message)
	return fmt.Errorf("%s would not be served", fs.Arg(0))
}
