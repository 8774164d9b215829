// Command trustproxy is an OCI registry pull-through proxy that verifies on
// pull, and the publisher tools that produce what it verifies.
//
// Each command lives in a file of its own and only maps flags to library
// calls and prints; see subcommands for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signalContext()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext ends on SIGINT or SIGTERM. Every command runs under it and
// stops cleanly when it ends: serve drains, the publisher commands leave the
// repository as it was.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// subcommands are trustproxy's top-level commands. A new command is a
// newXCmd function in a file of its own, listed here.
func subcommands() []*cobra.Command {
	return []*cobra.Command{
		newServeCmd(),
		newCheckCmd(),
		newDemoCmd(),
		newTrustCmd(),
		newMirrorCmd(),
		newPolicyCmd(),
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "trustproxy",
		Short: "An OCI registry pull-through proxy that verifies on pull",
		Long: `trustproxy is an OCI registry pull-through proxy that verifies on pull:
it serves only what TUF targets metadata (and in-toto layouts) vouch for,
caches only what it approved, and refuses everything else with a clear
OCI error. The trust commands create and sign the TUF repositories it reads.`,
		SilenceUsage:  true, // a failed pull check is not a usage mistake
		SilenceErrors: true, // run prints errors once, with a pointer to --help
	}
	root.AddCommand(subcommands()...)
	markRunErrors(root)
	return root
}

// runError is an error of a command's own work, as opposed to a usage
// mistake (unknown command or flag, missing argument), which run follows
// with a pointer to --help.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// markRunErrors wraps the RunE of c and every command below it.
func markRunErrors(c *cobra.Command) {
	if runE := c.RunE; runE != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := runE(cmd, args); err != nil {
				return &runError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// execute runs trustproxy with args (without the program name).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) (*cobra.Command, error) {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContextC(ctx)
}

// run is main without the exit: 0 on success, 1 on any error unless the
// error carries its own code (policy diff's newly denied); usage mistakes
// also get a pointer to --help.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, err := execute(ctx, args, stdout, stderr)
	if err == nil {
		return 0
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		fmt.Fprintf(stderr, "%v\n", err)
		return coded.ExitCode()
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var re *runError
	if cmd != nil && !errors.As(err, &re) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return 1
}

// noFileCompletion is the ValidArgsFunction of commands whose arguments are
// not files (image references, target names).
func noFileCompletion(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveNoFileComp
}
