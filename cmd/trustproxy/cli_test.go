package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The commands as tests call them: `trustproxy <command> <args>`.
func runTrust(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCommand(ctx, "trust", args, stdout, stderr)
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCommand(ctx, "check", args, stdout, stderr)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCommand(ctx, "demo", args, stdout, stderr)
}

func runCommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	_, err := execute(ctx, append([]string{name}, args...), stdout, stderr)
	return err
}

// Every command, at every depth, answers --help with its usage and flags,
// and says what it does.
func TestHelpEverywhere(t *testing.T) {
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(append(path, sub.Name()), sub)
		}
		if c.Short == "" {
			t.Errorf("%s: no Short description", c.CommandPath())
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(path, "--help"), &stdout, &stderr); code != 0 {
			t.Errorf("%s --help exited %d: %s", c.CommandPath(), code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Usage:") || !strings.Contains(stdout.String(), "-h, --help") {
			t.Errorf("%s --help:\n%s", c.CommandPath(), stdout.String())
		}
	}
	walk(nil, newRootCmd())

	var out bytes.Buffer
	if code := run(context.Background(), []string{"trust", "add", "--help"}, &out, &out); code != 0 ||
		!strings.Contains(out.String(), "--repo DIR") || !strings.Contains(out.String(), "--in-toto-layout FILE") {
		t.Errorf("trust add --help lacks its flags:\n%s", out.String())
	}
	out.Reset()
	run(context.Background(), []string{"trust", "--help"}, &out, &out)
	for _, sub := range trustSubcommands() {
		if !strings.Contains(out.String(), "  "+sub.Name()+" ") {
			t.Errorf("trust --help does not list %s:\n%s", sub.Name(), out.String())
		}
	}
}

// A command that fails at its work says why, without a usage hint.
func TestRunErrorsGetNoUsageHint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--config", "/nonexistent/x.yaml"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "read config") || strings.Contains(stderr.String(), "--help") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "trustproxy"`},
		{[]string{"trust", "bogus"}, `unknown command "bogus" for "trustproxy trust"`},
		{[]string{"serve"}, `required flag(s) "config" not set`},
		{[]string{"check", "--config", "x.yaml"}, "accepts 1 arg(s), received 0"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "--help' for usage") {
			t.Errorf("trustproxy %s: exit %d, stderr %q; want 1 and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.want)
		}
	}
}

// Shell completion: scripts for the usual shells, and completions of
// commands and flag values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"completion", shell}, &out, &out); code != 0 || out.Len() < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, out.Len())
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "tr"}, []string{"trust"}},
		{[]string{"__complete", "trust", "ro"}, []string{"rotate"}},
		{[]string{"__complete", "trust", "init", "--key-type", ""}, []string{"ed25519", "ecdsa", "rsa"}},
		{[]string{"__complete", "trust", "rotate", "--role", "t"}, []string{"targets", "timestamp"}},
	} {
		var out bytes.Buffer
		run(context.Background(), tc.args, &out, io.Discard)
		for _, w := range tc.want {
			if !strings.Contains("\n"+out.String(), "\n"+w+"\n") && !strings.Contains("\n"+out.String(), "\n"+w+"\t") {
				t.Errorf("%v: completions %q lack %s", tc.args, out.String(), w)
			}
		}
	}
}
