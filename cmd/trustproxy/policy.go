package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/impact"
)

// policySubcommands are the commands under `trustproxy policy`, one file
// each (policy_<name>.go).
func policySubcommands() []*cobra.Command {
	return []*cobra.Command{
		newPolicyExplainCmd(),
		newPolicyDiffCmd(),
	}
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Ask the policy: explain a decision, diff two policies",
		Long: `Questions a security team asks of the policy in a configuration file:
which rule decides a reference and why the others do not (explain), and
what a proposed policy would change for the references the proxy served
(diff). Both run the exact request path of a pull, with an in-memory
cache: they never write the proxy's cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(policySubcommands()...)
	return cmd
}

// openJudge assembles the configuration at path as policy explain and diff
// use it: quiet, and with an in-memory cache.
func openJudge(ctx context.Context, path string) (*instance, error) {
	return openInstance(ctx, path, func(c *fileConfig) {
		c.Log.Level = "error"
		c.Storage = storageConfig{Driver: "inmemory"}
	})
}

// judge is what a pull of ref gets from in, as impact sees it.
func (in *instance) judge(ctx context.Context, ref string) (impact.Outcome, error) {
	up, repo, err := in.server.Repository(ref)
	if err != nil {
		return impact.Outcome{Verdict: impact.Error, Reason: err.Error()}, nil
	}
	var o impact.Outcome
	for _, c := range in.policy.Explain(up, repo) {
		if c.Matched {
			o.Rule, o.Mode = c.Rule, string(c.Mode)
		}
	}
	res, err := in.server.Check(ctx, ref)
	if err != nil {
		return o, err
	}
	o.Digest = res.Digest
	switch {
	case res.Status == 200 && res.Warning != "":
		o.Verdict, o.Reason = impact.AuditFail, res.Warning
	case res.Status == 200 && o.Mode == "allow":
		o.Verdict = impact.AllowException
	case res.Status == 200:
		o.Verdict = impact.Allow
	case res.Status == 403 && res.Code == "DENIED":
		o.Verdict, o.Reason = impact.Deny, res.Message
	default:
		o.Verdict, o.Reason = impact.Error, fmt.Sprintf("%d %s: %s", res.Status, res.Code, res.Message)
	}
	return o, nil
}

// printJSON is --json's output.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
