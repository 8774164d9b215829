package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustDelegateCmd() *cobra.Command {
	var (
		f       repoFlags
		role    string
		opts    publish.DelegateOptions
		pubkeys []string
		bins    int
	)
	cmd := &cobra.Command{
		Use:   "delegate (--role NAME --paths PATTERN | --hash-bins N) --repo DIR --keys DIR",
		Short: "Delegate target names to a new role with its own keys",
		Long: `Stage a delegation: role NAME may sign the target names matching the
patterns (shell globs per "/"-separated segment: docker.io/acme/* covers
docker.io/acme/app:1.0 but not docker.io/acme/team/app:1.0). Its keys are
generated in <keys>/<NAME>/ unless --pubkey names existing ones.

--hash-bins N instead delegates every target name from targets to N succinct
hash bins with one key in <keys>/bins (see "trust init --hash-bins"); targets
must not delegate anything yet. Targets it lists itself stay there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bins != 0 {
				return delegateHashBins(cmd, f, bins)
			}
			for _, name := range []string{"role", "paths"} {
				if !cmd.Flags().Changed(name) {
					return fmt.Errorf("required flag(s) %q not set", name)
				}
			}
			for _, p := range pubkeys {
				pk, err := publish.ReadPublicKey(p)
				if err != nil {
					return err
				}
				opts.PublicKeys = append(opts.PublicKeys, pk)
			}
			repo, err := f.open()
			if err != nil {
				return err
			}
			ids, err := repo.Delegate(role, opts)
			if err != nil {
				return err
			}
			kt := opts.KeyType
			if kt == "" {
				kt = repo.KeyType()
			}
			keys := fmt.Sprintf("%d-of-%d %s keys in %s", opts.Threshold, len(ids), kt, repo.KeysDir(role))
			if len(pubkeys) > 0 {
				keys = fmt.Sprintf("%d-of-%d given keys", opts.Threshold, len(ids))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "delegated %s from %s to role %s (%s); staged, run \"trustproxy trust publish\" to publish\n",
				strings.Join(opts.Paths, ", "), opts.Parent, role, keys)
			return nil
		},
	}
	f.register(cmd, keysRequired, true)
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "name of the new `ROLE` (required)")
	fl.StringSliceVar(&opts.Paths, "paths", nil, "target name `PATTERN`s, comma-separated or repeated (required)")
	fl.StringVar(&opts.Parent, "parent", "targets", "delegating `ROLE`")
	fl.IntVar(&opts.Threshold, "threshold", 1, "number of the role's keys that must sign")
	fl.IntVar(&opts.Keys, "num-keys", 0, "number of keys to generate (default: the threshold)")
	fl.StringVar(&opts.KeyType, "key-type", "", "key `TYPE` of generated keys (default: the repository's)")
	fl.StringSliceVar(&pubkeys, "pubkey", nil, "delegate to this PEM public key `FILE` instead of generating keys (repeatable; place the private key in <keys>/<ROLE>/ to publish)")
	fl.BoolVar(&opts.Terminating, "terminating", false, "clients stop searching at this role for names it covers")
	fl.IntVar(&bins, "hash-bins", 0, "delegate all target names to `N` succinct hash bins instead (a power of two)")
	cmd.MarkFlagsMutuallyExclusive("hash-bins", "role")
	cmd.MarkFlagsMutuallyExclusive("hash-bins", "paths")
	cmd.MarkFlagsMutuallyExclusive("hash-bins", "pubkey")
	return cmd
}

func delegateHashBins(cmd *cobra.Command, f repoFlags, bins int) error {
	repo, err := f.open()
	if err != nil {
		return err
	}
	ids, err := repo.DelegateHashBins(bins)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "delegated every target name from targets to %d hash bins (%s-…, 1-of-%d %s keys in %s); staged, run \"trustproxy trust publish\" to publish\n",
		bins, publish.BinPrefix, len(ids), repo.KeyType(), repo.KeysDir(publish.BinPrefix))
	return nil
}
