package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/mirror"
)

func newMirrorImportCmd() *cobra.Command {
	var configPath, work string
	var asJSON bool
	thick := &thickFlags{}
	cmd := &cobra.Command{
		Use:   "import --config FILE <export directory | export.tar | ->",
		Short: "Verify an export against this side's roots, state and policy, then load it",
		Long: `Verify everything in an export before anything becomes visible: every blob's
digest, the TUF metadata against the root pinned in this configuration (a
root in the export is followed only through a valid rotation chain) and
this side's persisted trust state (no rollback), this side's policy for
every reference (in-toto evaluated, nothing executed), and that the layout
holds nothing else. Then load the content into this side's cache and the
trust metadata into this side's trust directories (the trust repository's
metadata must be a local directory). Importing the same export again
changes nothing.

A CNAB thick bundle (porter archive, a gzipped tar) is imported with
--bundle <upstream>/<repository>:<tag>: every image is checked against
bundle.json's contentDigests, the bundle's OCI index is rebuilt as
cnab-to-oci pushes it, and the bundle is verified like an exported one,
against this side's trust directories or a trust repository carried with
--trust-dir NAME=DIR.`,
		Example: `  trustproxy mirror import --config offline.yaml /media/usb/export
  trustproxy mirror import --config offline.yaml export.tar
  trustproxy mirror import --config offline.yaml --bundle docker.io/acme/bundle:v1.0 bundle.tgz`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			log, err := newLogger(logConfig{Level: "error", Format: c.Log.Format})
			if err != nil {
				return err
			}
			o, closeCache, err := importOptions(ctx, c, log)
			if err != nil {
				return err
			}
			defer closeCache()
			view := newProgressView(cmd.ErrOrStderr(), "import", asJSON)
			o.WorkDir, o.Progress = work, view.update
			src := args[0]
			res, err := thick.run(ctx, cmd, src, o)
			if res != nil || err != nil {
				// a CNAB thick bundle (mirror_thick.go), imported or refused
			} else if fi, serr := os.Stat(src); serr == nil && fi.IsDir() {
				res, err = mirror.ImportDir(ctx, src, o)
			} else if src == "-" {
				res, err = mirror.ImportTar(ctx, cmd.InOrStdin(), o)
			} else {
				f, oerr := os.Open(src)
				if oerr != nil {
					return oerr
				}
				defer f.Close()
				res, err = mirror.ImportTar(ctx, f, o)
			}
			view.finish()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(res)
			}
			if res.NoOp {
				fmt.Fprintln(out, "already imported: nothing changed")
				return nil
			}
			reused := ""
			if res.Reused > 0 {
				reused = fmt.Sprintf(", %d held already from the base export", res.Reused)
			}
			fmt.Fprintf(out, "imported %d references: %d blobs and %d manifests added (%d bytes)%s; trust updated: %s\n",
				len(res.Entries), res.BlobsAdded, res.ManifestsAdded, res.BytesAdded, reused, strings.Join(res.TrustUpdated, ", "))
			return nil
		},
	}
	addConfigFlag(cmd, &configPath)
	thick.register(cmd)
	cmd.Flags().StringVar(&work, "work", "", "`DIR` to unpack a tar stream into while it is verified (default: system temp)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (progress: JSON lines on stderr)")
	return cmd
}
