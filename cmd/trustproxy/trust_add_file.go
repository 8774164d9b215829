package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newTrustAddFileCmd() *cobra.Command {
	var (
		f    repoFlags
		role string
		now  bool
	)
	cmd := &cobra.Command{
		Use:   "add-file <target name> <file> --repo DIR",
		Short: "Stage a file as a target (e.g. a signed policy), stored under targets/",
		Long: `Stage target <target name> with the sha256 and length of the file's bytes
and store the bytes under targets/ so clients can download them: a policy
file that proxies take their rules from (policy.from), or any other file.`,
		Example:           `  trustproxy trust add-file policy/prod.yaml prod-policy.yaml --repo tuf/repository --keys tuf/keys --publish`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := f.openToStage(now)
			if err != nil {
				return err
			}
			file, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer file.Close()
			t, err := repo.AddTargetFile(role, args[0], file, nil)
			if err != nil {
				return err
			}
			summary := fmt.Sprintf("added %s to role %s: sha256:%s, %d bytes", t.Name, t.Role, t.SHA256, t.Length)
			return finishTrustEdit(cmd.Context(), repo, now, summary, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, keysPublish, false)
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "targets `ROLE` to add to (default: the most specific role delegated the name, else targets)")
	fl.BoolVar(&now, "publish", false, "publish right away (needs --keys)")
	return cmd
}
