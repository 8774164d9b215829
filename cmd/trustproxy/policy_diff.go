package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/impact"
)

// exitNewlyDenied is policy diff's exit code when the proposal would
// refuse something the current policy serves (1 is any other failure).
const exitNewlyDenied = 2

// exitError carries an exit code other than 1 to run.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func newPolicyDiffCmd() *cobra.Command {
	var current, proposed, listFile string
	var auditLogs []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff --config CURRENT --new PROPOSED (--audit-log FILE... | --refs FILE)",
		Short: "Replay served references under the current and a proposed policy and report what changes",
		Long: `Replay the references the proxy served, taken from its audit log (the
JSON "decision" lines of the logger "audit"; the whole log can be given as
it is) or from a list (one reference per line), under the configuration in
force (--config) and a proposed one (--new). Each runs the exact request
path of a pull, with an in-memory cache. Prints, per reference whose
outcome changes, the verdict under each policy and why it changed (the
verdict, the rule that now governs, the new reason), then a summary.

Exit status: 0 when nothing served now would be refused, 2 when the
proposal would newly refuse at least one reference, 1 on any other error.`,
		Example: `  trustproxy policy diff --config /etc/trustproxy.yaml --new proposed.yaml --audit-log trustproxy.log
  trustproxy policy diff --config current.yaml --new proposed.yaml --refs refs.txt --json`,
		Args:              cobra.NoArgs,
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			refs, err := readReplay(auditLogs, listFile)
			if err != nil {
				return err
			}
			cur, err := openJudge(ctx, current)
			if err != nil {
				return fmt.Errorf("current policy: %w", err)
			}
			prop, err := openJudge(ctx, proposed)
			if err != nil {
				return fmt.Errorf("proposed policy: %w", err)
			}
			rep, err := impact.Compare(ctx, refs, cur.judge, prop.judge)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, map[string]any{"currentPolicy": cur.policy.Version(), "proposedPolicy": prop.policy.Version(),
					"references": rep.Changes, "summary": rep.Summary}); err != nil {
					return err
				}
			} else {
				printDiff(out, rep, cur.policy.Version(), prop.policy.Version())
			}
			if n := rep.Summary.NewlyDenied; n > 0 {
				return &exitError{exitNewlyDenied, fmt.Sprintf("the proposed policy would newly refuse %d of %d references", n, rep.Summary.References)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&current, "config", "c", "", "the configuration in force `FILE` (YAML)")
	f.StringVar(&proposed, "new", "", "the proposed configuration `FILE` (YAML)")
	f.StringSliceVar(&auditLogs, "audit-log", nil, "trustproxy log `FILE` to take references from (repeatable; - is stdin)")
	f.StringVar(&listFile, "refs", "", "`FILE` with one reference per line")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("new")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	_ = cmd.MarkFlagFilename("new", "yaml", "yml")
	cmd.MarkFlagsOneRequired("audit-log", "refs")
	cmd.MarkFlagsMutuallyExclusive("audit-log", "refs")
	return cmd
}

// readReplay reads the references to replay from audit logs or a list.
func readReplay(auditLogs []string, listFile string) ([]impact.Seen, error) {
	open := func(p string) (io.ReadCloser, error) {
		if p == "-" {
			return io.NopCloser(os.Stdin), nil
		}
		return os.Open(p)
	}
	if listFile != "" {
		f, err := open(listFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return impact.ReadList(f)
	}
	var readers []io.Reader
	for _, p := range auditLogs {
		f, err := open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		readers = append(readers, f, newline{})
	}
	refs, err := impact.ReadAuditLog(io.MultiReader(readers...))
	if err == nil && len(refs) == 0 {
		err = errors.New("the audit log holds no decision lines (logger \"audit\", message \"decision\"): is it trustproxy's JSON log?")
	}
	return refs, err
}

// newline separates concatenated log files.
type newline struct{}

func (newline) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = '\n'
	return 1, io.EOF
}

func printDiff(out io.Writer, rep impact.Report, curV, propV string) {
	fmt.Fprintf(out, "current policy %s, proposed policy %s\n\n", curV, propV)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, c := range rep.Changes {
		if c.Kind == "unchanged" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%s\n", changeMark(c.Kind), c.Reference, c.Current.Verdict, c.Proposed.Verdict, c.Why)
	}
	_ = tw.Flush()
	s := rep.Summary
	fmt.Fprintf(out, "\n%d references: %d unchanged, %d newly denied, %d newly allowed, %d changed otherwise\n",
		s.References, s.Unchanged, s.NewlyDenied, s.NewlyAllowed, s.Changed)
}

func changeMark(kind string) string {
	switch kind {
	case "newly-denied":
		return "DENIED"
	case "newly-allowed":
		return "ALLOWED"
	}
	return "CHANGED"
}
