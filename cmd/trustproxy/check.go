package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCheckCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "check --config FILE <upstream>/<repository>(:<tag>|@<digest>)",
		Short: "Print the decision for a reference without serving",
		Long: `Print the decision a pull of the reference would get, and why, without
serving: ALLOW with the digest that would be served, or DENY with the OCI
error a client would see. Exits non-zero on DENY.`,
		Example:           `  trustproxy check --config trustproxy.yaml docker.io/library/alpine:3.20`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in, err := openInstance(ctx, configPath, func(c *fileConfig) { c.Log.Level = "warn" })
			if err != nil {
				return err
			}
			res, err := in.server.Check(ctx, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.Status == 200 {
				fmt.Fprintf(out, "ALLOW %s\n  digest:     %s\n  media type: %s\n", args[0], res.Digest, res.Type)
				if res.Warning != "" {
					fmt.Fprintf(out, "  warning:    %s\n", res.Warning)
				}
				return nil
			}
			fmt.Fprintf(out, "DENY %s\n  status: %d %s\n  reason: %s\n", args[0], res.Status, res.Code, res.Message)
			return fmt.Errorf("%s would not be served", args[0])
		},
	}
	addConfigFlag(cmd, &configPath)
	return cmd
}
