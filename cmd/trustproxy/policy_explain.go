package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/policy"
)

func newPolicyExplainCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain --config FILE <upstream>/<repository>(:<tag>|@<digest>)",
		Short: "Show which rule decides a reference, which others were considered and why they did not match",
		Long: `List the policy's rules in the order they are tried for the reference's
repository (most specific pattern first), mark the one that governs it,
say for each other rule why it does not (its pattern does not match, or a
more specific rule matched first), then run the exact request path of a
pull and print the decision with its reason. Exits 0 whatever the verdict
(use check or policy diff in CI).`,
		Example:           `  trustproxy policy explain --config trustproxy.yaml docker.io/library/alpine:3.20`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in, err := openJudge(ctx, configPath)
			if err != nil {
				return err
			}
			ref := args[0]
			up, repo, err := in.server.Repository(ref)
			if err != nil {
				return err
			}
			rules := in.policy.Explain(up, repo)
			o, err := in.judge(ctx, ref)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, map[string]any{"reference": ref, "repository": up + "/" + repo,
					"policyVersion": in.policy.Version(), "rules": rules, "decision": o})
			}
			fmt.Fprintf(out, "%s\n  repository: %s/%s\n  policy:     %s\n\nrules, in the order tried:\n", ref, up, repo, in.policy.Version())
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			for _, r := range rules {
				mark, why := " ", r.Why
				if r.Matched {
					mark, why = "*", "governs "+up+"/"+repo
				}
				fmt.Fprintf(tw, "  %s %s\t%s\t%s\t%s\n", mark, r.Rule, r.Match, modeText(r), why)
			}
			if len(rules) == 0 {
				fmt.Fprintf(tw, "  (the policy has no rules)\n")
			}
			_ = tw.Flush()
			fmt.Fprintf(out, "\ndecision: %s", o.Verdict)
			if o.Rule == "" {
				fmt.Fprintf(out, " (no rule matches: default deny)")
			} else {
				fmt.Fprintf(out, " by rule %q", o.Rule)
			}
			fmt.Fprintln(out)
			if o.Digest != "" {
				fmt.Fprintf(out, "  digest: %s\n", o.Digest)
			}
			if o.Reason != "" {
				fmt.Fprintf(out, "  reason: %s\n", o.Reason)
			}
			return nil
		},
	}
	addConfigFlag(cmd, &configPath)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func modeText(r policy.Considered) string {
	if r.Trust != "" {
		return fmt.Sprintf("%s (trust %s)", r.Mode, r.Trust)
	}
	return string(r.Mode)
}
