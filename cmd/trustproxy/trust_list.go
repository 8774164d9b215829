package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustListCmd() *cobra.Command {
	var f repoFlags
	cmd := &cobra.Command{
		Use:   "list --repo DIR",
		Short: "Print the targets of the working copy with role and digest",
		Long: `Print the targets of the working copy (published plus staged changes): role,
target name, digest, length and media type.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := f.open()
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			targets, err := repo.ListTargets()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			if len(targets) > 0 {
				fmt.Fprintln(tw, "ROLE\tTARGET\tDIGEST\tLENGTH\tMEDIA TYPE")
			}
			roles := map[string]bool{}
			for _, t := range targets {
				roles[t.Role] = true
				fmt.Fprintf(tw, "%s\t%s\tsha256:%s\t%d\t%s\n", t.Role, t.Name, t.SHA256, t.Length, trustMediaType(t))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			pending, err := repo.Pending()
			if err != nil {
				return err
			}
			state := "all published"
			if len(pending) > 0 {
				state = "unpublished changes in " + strings.Join(pending, ", ")
			}
			fmt.Fprintf(stdout, "%d target(s) in %d role(s) (%d roles in all); %s\n", len(targets), len(roles), len(repo.RoleNames())+repo.HashBins(), state)
			return nil
		},
	}
	f.register(cmd, "", false)
	return cmd
}

func trustMediaType(t publish.Target) string {
	var c struct {
		MediaType string `json:"mediaType"`
	}
	if len(t.Custom) == 0 || json.Unmarshal(t.Custom, &c) != nil || c.MediaType == "" {
		return "-"
	}
	return c.MediaType
}
