package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustAddTargetsCmd() *cobra.Command {
	var (
		f    repoFlags
		role string
		now  bool
	)
	cmd := &cobra.Command{
		Use:   "add-targets <list file, or - for stdin> --repo DIR",
		Short: "Stage many targets at once from a JSON-lines list (digests you already know)",
		Long: `Stage every target of a list in one edit, all or nothing: one JSON object per
line with name, digest (sha256:<hex>) or sha256, length and optionally
mediaType and custom. Nothing is fetched from a registry and no target
bytes are stored: this is how a security team signs every tag of every
repository from the digests its build system recorded. With hash bins each
touched bin is rewritten once, however many of its targets the list holds.

  {"name":"ghcr.io/acme/app:1.4.2","digest":"sha256:…","length":1234,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`,
		Example: `  crane ls ghcr.io/acme/app | while read tag; do ...; done > tags.jsonl
  trustproxy trust add-targets tags.jsonl --repo tuf/repository --keys tuf/keys --publish`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.FixedCompletions(nil, cobra.ShellCompDirectiveDefault),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.needKeysToPublish(now); err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				in = file
			}
			list, err := publish.ReadTargetList(in)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				return fmt.Errorf("%s: no targets in the list", args[0])
			}
			repo, err := f.open()
			if err != nil {
				return err
			}
			added, err := repo.AddTargets(role, list)
			if err != nil {
				return err
			}
			roles := map[string]bool{}
			for _, t := range added {
				roles[t.Role] = true
			}
			summary := fmt.Sprintf("added %d target(s) to %d role(s)", len(added), len(roles))
			return finishTrustEdit(cmd.Context(), repo, now, summary, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, keysPublish, false)
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "targets `ROLE` to add to (default: for each name the most specific role delegated it: its hash bin, a delegated role, else targets)")
	fl.BoolVar(&now, "publish", false, "publish right away (needs --keys)")
	return cmd
}
