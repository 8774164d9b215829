package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustRotateCmd() *cobra.Command {
	var (
		f    repoFlags
		role string
		opts publish.RotateOptions
	)
	cmd := &cobra.Command{
		Use:   "rotate --role ROLE --repo DIR --keys DIR",
		Short: "Replace the keys of a top-level role, publishing a new root",
		Long: `Replace the keys of a top-level role (root, targets, snapshot, timestamp)
with new ones: publishes root version N+1 signed by the old root keys (and
the new ones for root) and re-signs what the new keys must sign. Old key
files move to <keys>/<ROLE>/retired. Also renews root's expiry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := f.open()
			if err != nil {
				return err
			}
			res, err := repo.RotateKeys(cmd.Context(), role, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated %s keys (new keys in %s): %s\n", role, repo.KeysDir(role), describeTrustResult(res))
			printTrustWarnings(cmd.ErrOrStderr(), res)
			return nil
		},
	}
	f.register(cmd, keysRequired, true)
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "top-level `ROLE` to rotate (required)")
	fl.IntVar(&opts.Threshold, "threshold", 0, "number of new keys that must sign (default: unchanged)")
	fl.IntVar(&opts.Keys, "num-keys", 0, "number of new keys (default: the threshold)")
	fl.StringVar(&opts.KeyType, "key-type", "", "key `TYPE` of the new keys (default: the repository's)")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(
		[]cobra.Completion{"root", "targets", "snapshot", "timestamp"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
