package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustInitCmd() *cobra.Command {
	var (
		f       repoFlags
		opts    publish.InitOptions
		expires string
	)
	cmd := &cobra.Command{
		Use:   "init --repo DIR --keys DIR",
		Short: "Create a TUF repository and its keys",
		Long: `Create a new TUF repository (consistent snapshots) and generate its root,
targets, snapshot and timestamp keys, then publish version 1 with no targets.

With --hash-bins N, targets delegates every target name to N succinct hash
bins (TUF succinct_roles: the first log2(N) bits of the sha256 of the name
pick the bin), signed by one bin key in <keys>/bins. Adding a target then
re-signs, and clients refetch, one bin instead of one role listing
everything. 1024 bins suit up to a few million targets (about a thousand
targets per bin at a million).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exp, err := parseTrustExpiry(expires)
			if err != nil {
				return err
			}
			opts.Expiry = exp
			r, err := publish.Init(cmd.Context(), f.repo, f.keys, opts)
			if err != nil {
				return err
			}
			n := opts.RootKeys
			if n == 0 {
				n = opts.RootThreshold
			}
			root, err := os.ReadFile(r.RootPath())
			if err != nil {
				return err
			}
			bins := ""
			if opts.HashBins > 0 {
				bins = fmt.Sprintf(", %d hash bins", opts.HashBins)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialized trust repository %s (%s keys in %s, root %d-of-%d%s); pin %s (sha256 %x)\n",
				f.repo, opts.KeyType, f.keys, opts.RootThreshold, n, bins, r.RootPath(), sha256.Sum256(root))
			return nil
		},
	}
	f.register(cmd, keysRequired, true)
	fl := cmd.Flags()
	fl.StringVar(&opts.KeyType, "key-type", publish.KeyEd25519, "key `TYPE`: ed25519, ecdsa (P-256) or rsa (3072-bit RSA-PSS)")
	fl.IntVar(&opts.RootThreshold, "root-threshold", 1, "number of root keys that must sign a root")
	fl.IntVar(&opts.RootKeys, "root-keys", 0, "number of root keys to generate (default: the threshold)")
	fl.IntVar(&opts.HashBins, "hash-bins", 0, "delegate all target names to `N` succinct hash bins (a power of two; 1024 for up to a few million targets)")
	fl.StringVar(&expires, "expires", "", "metadata lifetimes, `ROLE=DUR,...` (e.g. timestamp=1d,targets=30d; units d, h, m, s); defaults: root=365d targets=90d snapshot=7d timestamp=1d")
	_ = cmd.RegisterFlagCompletionFunc("key-type", cobra.FixedCompletions(
		[]cobra.Completion{publish.KeyEd25519, publish.KeyECDSA, publish.KeyRSA}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// parseTrustExpiry parses "role=dur,role=dur"; dur is a Go duration or a
// whole number of days ("90d").
func parseTrustExpiry(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		role, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || role == "" {
			return nil, fmt.Errorf("--expires: want ROLE=DURATION, got %q", part)
		}
		var d time.Duration
		if days, ok := strings.CutSuffix(v, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil {
				return nil, fmt.Errorf("--expires %s: %q is not a number of days", role, v)
			}
			d = time.Duration(n) * 24 * time.Hour
		} else {
			var err error
			if d, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("--expires %s: %w", role, err)
			}
		}
		if d <= 0 {
			return nil, fmt.Errorf("--expires %s: %q must be positive", role, v)
		}
		out[role] = d
	}
	return out, nil
}
