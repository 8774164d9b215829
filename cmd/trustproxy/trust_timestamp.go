package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newTrustTimestampCmd() *cobra.Command {
	var f repoFlags
	cmd := &cobra.Command{
		Use:   "timestamp --repo DIR --keys DIR",
		Short: "Re-sign only the timestamp (run from cron)",
		Long: `Re-sign only the timestamp for the current snapshot, needing only the
timestamp key. Run it from cron more often than the timestamp expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := f.open()
			if err != nil {
				return err
			}
			res, err := repo.Timestamp(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "re-signed timestamp v%d for snapshot v%d, expires %s\n", res.Timestamp, res.Snapshot, res.Expires.Format(time.RFC3339))
			printTrustWarnings(cmd.ErrOrStderr(), res)
			return nil
		},
	}
	f.register(cmd, keysRequired, true)
	return cmd
}
