package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish/notaryimport"
	"github.com/trustproxy/trustproxy/trustfetch/notary"
)

func newTrustImportNotaryCmd() *cobra.Command {
	var (
		f          repoFlags
		o          notaryimport.Options
		server     string
		pin        notary.Pin
		certFiles  []string
		layoutKeys []string
		state      string
		caFile     string
		now        bool
	)
	cmd := &cobra.Command{
		Use:   "import-notary --server URL --gun GUN (--root-key-id ID | --root-cert FILE) --repo DIR",
		Short: "Migrate a GUN's Notary v1 (DCT, Signy) trust data into this repository",
		Long: `Verify a GUN's Notary v1 trust data (Docker Content Trust, Signy) against
the pinned root, exactly as trustproxy's notary trust source does, and stage
every signed tag as target <trust name>:<tag> with the same sha256 and length.
Signy's inline in-toto payload becomes CNAB Security 301 targets (the layout,
its public key and the links under <trust name>/in-toto-…) after it verified,
without running anything, for the tag's subject with a layout key given by
--layout-key. Tags that do not verify, and tags signed only by delegations
other than targets/releases, are reported as refused and left out; the
command then exits non-zero. With --publish the result is signed with this
repository's keys, after which the Notary server may be retired.`,
		Example: `  trustproxy trust import-notary --server https://notary.corp.example:4443 \
    --gun registry.corp.example/acme/app --root-key-id 5f1c… \
    --repo tuf/repository --keys tuf/keys --publish`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.needKeysToPublish(now); err != nil {
				return err
			}
			pin.GUN = o.GUN
			for _, p := range certFiles {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("--root-cert: %w", err)
				}
				pin.RootCerts = append(pin.RootCerts, b)
			}
			for _, p := range layoutKeys {
				b, err := os.ReadFile(p)
				if err != nil {
					return fmt.Errorf("--layout-key: %w", err)
				}
				o.LayoutKeys = append(o.LayoutKeys, b)
			}
			var err error
			if state == "" {
				dir, err := os.MkdirTemp("", "trustproxy-import-notary-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				state = dir
			}
			cfg := notary.Config{Name: "import", URL: server, StateDir: state, Pins: []notary.Pin{pin}}
			if caFile != "" {
				if cfg.CA, err = os.ReadFile(caFile); err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
			}
			src, err := notary.Open(cfg, notary.Options{})
			if err != nil {
				return err
			}
			repo, err := f.open()
			if err != nil {
				return err
			}
			rep, err := notaryimport.Import(cmd.Context(), src, repo, o)
			if err != nil {
				return err
			}
			summary := printImportReport(cmd.OutOrStdout(), rep)
			if len(rep.Migrated) > 0 {
				if err := finishTrustEdit(cmd.Context(), repo, now, summary, cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if len(rep.Refused) > 0 {
				return fmt.Errorf("%d tag(s) of %s refused (listed above)", len(rep.Refused), rep.GUN)
			}
			return nil
		},
	}
	f.register(cmd, keysPublish, false)
	fl := cmd.Flags()
	fl.StringVar(&server, "server", "", "Notary server `URL` (required)")
	fl.StringVar(&o.GUN, "gun", "", "the collection to migrate, e.g. registry.corp.example/acme/app (required)")
	fl.StringSliceVar(&pin.RootKeyIDs, "root-key-id", nil, "pinned root key `ID` as root.json lists it (repeatable)")
	fl.StringSliceVar(&certFiles, "root-cert", nil, "pinned root certificate `FILE` (PEM; repeatable)")
	fl.StringVar(&pin.Content, "content", notary.ContentImage, "what the tags hash: image (manifest) or bundle (Signy bundle.json)")
	fl.StringSliceVar(&layoutKeys, "layout-key", nil, "pinned in-toto layout key `FILE` for Signy payloads (repeatable)")
	fl.StringVar(&o.TrustName, "name", "", "trust `NAME` of the migrated targets (default: the GUN)")
	fl.StringVar(&o.Role, "role", "", "targets `ROLE` for the tags (default: the most specific role delegated the name, else targets)")
	fl.StringVar(&caFile, "ca", "", "PEM `FILE` of the CA the server's TLS certificate must chain to (default: system roots)")
	fl.StringVar(&state, "state", "", "keep the verified Notary metadata in `DIR` (default: a temporary directory)")
	fl.BoolVar(&now, "publish", false, "publish right away (needs --keys)")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("gun")
	return cmd
}

// printImportReport lists every migrated and refused tag and returns the
// one-line summary.
func printImportReport(w io.Writer, rep *notaryimport.Report) string {
	for _, m := range rep.Migrated {
		line := fmt.Sprintf("migrated %s -> %s: sha256:%s, %d bytes", m.Tag, m.Target, m.SHA256, m.Length)
		if len(m.InToto) > 0 {
			line += fmt.Sprintf(", with %d in-toto target(s)", len(m.InToto))
		}
		fmt.Fprintln(w, line)
	}
	for _, r := range rep.Refused {
		fmt.Fprintf(w, "refused %s: %s\n", r.Tag, r.Reason)
	}
	return fmt.Sprintf("imported %d tag(s) of %s from Notary, refused %d", len(rep.Migrated), rep.GUN, len(rep.Refused))
}
