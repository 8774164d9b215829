package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newTrustPublishCmd() *cobra.Command {
	var f repoFlags
	cmd := &cobra.Command{
		Use:   "publish --repo DIR --keys DIR",
		Short: "Sign and publish staged changes, a new snapshot and timestamp",
		Long: `Sign and publish: a new version of every targets role that changed (or is
past half its lifetime, or was signed by rotated keys), then a new snapshot
and timestamp. Run it at least as often as the snapshot expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := f.open()
			if err != nil {
				return err
			}
			res, err := repo.Publish(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "published %s: %s\n", f.repo, describeTrustResult(res))
			printTrustWarnings(cmd.ErrOrStderr(), res)
			return nil
		},
	}
	f.register(cmd, keysRequired, true)
	return cmd
}
