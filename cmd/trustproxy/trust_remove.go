package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newTrustRemoveCmd() *cobra.Command {
	var (
		f    repoFlags
		role string
		now  bool
	)
	cmd := &cobra.Command{
		Use:   "remove <target name>... --repo DIR",
		Short: "Stage the removal of targets (revokes them once published)",
		Long: `Stage the removal of targets (e.g. docker.io/library/alpine:3.20). Once
published, trustproxy stops serving them within its refresh interval.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, names []string) error {
			repo, err := f.openToStage(now)
			if err != nil {
				return err
			}
			roles := map[string]bool{}
			for _, n := range names {
				from, err := repo.RemoveTarget(role, n)
				if err != nil {
					return err
				}
				for _, r := range from {
					roles[r] = true
				}
			}
			summary := fmt.Sprintf("removed %d target(s) from role(s) %s", len(names), strings.Join(sortedTrustKeys(roles), ", "))
			return finishTrustEdit(cmd.Context(), repo, now, summary, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, keysPublish, false)
	cmd.Flags().StringVar(&role, "role", "", "remove only from this `ROLE` (default: every role that lists the name)")
	cmd.Flags().BoolVar(&now, "publish", false, "publish right away (needs --keys)")
	return cmd
}
