package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

// trustSubcommands are the publisher commands under `trustproxy trust`, one
// file each (trust_<name>.go).
func trustSubcommands() []*cobra.Command {
	return []*cobra.Command{
		newTrustInitCmd(),
		newTrustAddCmd(),
		newTrustAddFileCmd(),
		newTrustAddTargetsCmd(),
		newTrustRemoveCmd(),
		newTrustDelegateCmd(),
		newTrustPublishCmd(),
		newTrustTimestampCmd(),
		newTrustRotateCmd(),
		newTrustListCmd(),
		newTrustImportNotaryCmd(),
	}
}

func newTrustCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Publisher tools: init, add, add-file, add-targets, remove, delegate, publish, timestamp, rotate, list, import-notary",
		Long: `Create and sign the TUF repositories trustproxy verifies.

A trust repository is a directory servable as-is by any static web server
(metadata URL <base>/metadata, targets URL <base>/targets) or usable as a
local directory. Pin <repo>/metadata/1.root.json in trustproxy's
configuration; clients follow later root rotations from it.

Private keys live in --keys DIR, one directory per role (<role>/<keyid>.key,
mode 0600), never inside the repository. add, remove and delegate stage
changes in <repo>/staging; publish signs and publishes them.`,
		// Runnable only so that an unknown subcommand is an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(trustSubcommands()...)
	return cmd
}

// repoFlags are the flags every trust command shares.
type repoFlags struct {
	repo string
	keys string
}

// Help texts of --keys: commands that always sign, and staging commands
// that sign only with --publish.
const (
	keysRequired = "private keys `DIR`, outside the repository (required)"
	keysPublish  = "private keys `DIR`, outside the repository (needed with --publish)"
)

// register adds --repo (required) and, unless keysHelp is "", --keys;
// required says whether --keys is.
func (f *repoFlags) register(cmd *cobra.Command, keysHelp string, required bool) {
	cmd.Flags().StringVar(&f.repo, "repo", "", "trust repository `DIR` (required)")
	_ = cmd.MarkFlagRequired("repo")
	_ = cmd.MarkFlagDirname("repo")
	if keysHelp == "" {
		return
	}
	cmd.Flags().StringVar(&f.keys, "keys", "", keysHelp)
	_ = cmd.MarkFlagDirname("keys")
	if required {
		_ = cmd.MarkFlagRequired("keys")
	}
}

func (f *repoFlags) open() (*publish.Repo, error) {
	return publish.Open(f.repo, f.keys, publish.Options{})
}

// needKeysToPublish is the check of the staging commands' --publish.
func (f *repoFlags) needKeysToPublish(now bool) error {
	if now && f.keys == "" {
		return fmt.Errorf("--publish needs --keys DIR")
	}
	return nil
}

// openToStage opens the repository for a staging command, refusing
// --publish without --keys before anything is read.
func (f *repoFlags) openToStage(now bool) (*publish.Repo, error) {
	if err := f.needKeysToPublish(now); err != nil {
		return nil, err
	}
	return f.open()
}

// finishTrustEdit prints the summary of a staging command, publishing first
// when asked to.
func finishTrustEdit(ctx context.Context, repo *publish.Repo, now bool, summary string, stdout, stderr io.Writer) error {
	if !now {
		fmt.Fprintf(stdout, "%s; staged, run \"trustproxy trust publish\" to publish\n", summary)
		return nil
	}
	res, err := repo.Publish(ctx)
	if err != nil {
		return fmt.Errorf("%s, but publishing failed (the change stays staged): %w", summary, err)
	}
	fmt.Fprintf(stdout, "%s; published (%s)\n", summary, describeTrustResult(res))
	printTrustWarnings(stderr, res)
	return nil
}

func describeTrustResult(res *publish.Result) string {
	var parts []string
	if res.Root > 1 {
		parts = append(parts, fmt.Sprintf("root v%d", res.Root))
	}
	for _, role := range sortedTrustKeys(res.Roles) {
		parts = append(parts, fmt.Sprintf("%s v%d", role, res.Roles[role]))
	}
	switch bins := sortedTrustKeys(res.Bins); len(bins) {
	case 0:
	case 1:
		parts = append(parts, fmt.Sprintf("hash bin %s v%d", bins[0], res.Bins[bins[0]]))
	default:
		parts = append(parts, fmt.Sprintf("%d hash bins", len(bins)))
	}
	parts = append(parts, fmt.Sprintf("snapshot v%d", res.Snapshot),
		fmt.Sprintf("timestamp v%d (expires %s)", res.Timestamp, res.Expires.Format(time.RFC3339)))
	return strings.Join(parts, ", ")
}

func printTrustWarnings(w io.Writer, res *publish.Result) {
	for _, m := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
}

func sortedTrustKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
