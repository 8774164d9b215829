package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/mirror"
)

func newMirrorExportCmd() *cobra.Command {
	var configPath, out, tarOut, since string
	var asJSON bool
	var all, rules []string
	cmd := &cobra.Command{
		Use:   "export --config FILE (--out DIR | --tar FILE|-) [<upstream>/<repository>(:<tag>|@<digest>) | PATTERN]... [--all PATTERN]... [--rule NAME]...",
		Short: "Write verified references with their trust data as an OCI image layout",
		Long: `Pull each reference through the verifying proxy the configuration describes
(exactly what a client would get; nothing unapproved) and write it, with the
TUF metadata and in-toto target files that vouched for it, as an OCI image
layout directory (--out) or tar stream (--tar). Only references an enforce
rule's trust data vouches for are exported.

A PATTERN (an argument with a '*', or --all; e.g. docker.io/acme/** or, for
every signed tag of one repository, --all docker.io/acme/app) exports every
tag an enforce rule's trust data vouches for in the repositories it matches;
--rule NAME every tag that rule's trust data vouches for in the repositories
it governs. Both read the verified trust index, then export each tag as if
it had been named.

With --since, manifests and blobs an earlier export (directory or tar)
carried are left out; the TUF metadata is always complete. Such an export
imports only on a side that imported the earlier one (import refuses it
otherwise, naming the missing base).`,
		Example: `  trustproxy mirror export --config online.yaml --out /media/usb/export docker.io/acme/app:1.4.2
  trustproxy mirror export --config online.yaml --tar export.tar docker.io/acme/app:1.4.2
  trustproxy mirror export --config online.yaml --tar week2.tar --since export.tar docker.io/acme/app:1.5.0
  trustproxy mirror export --config online.yaml --out /media/usb/acme 'docker.io/acme/**'
  trustproxy mirror export --config online.yaml --out /media/usb/acme --rule acme`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (out == "") == (tarOut == "") {
				return fmt.Errorf("give exactly one of --out and --tar")
			}
			var refs []string
			patterns := append([]string{}, all...)
			for _, a := range args {
				if strings.Contains(a, "*") {
					patterns = append(patterns, a)
				} else {
					refs = append(refs, a)
				}
			}
			if len(refs)+len(patterns)+len(rules) == 0 {
				return fmt.Errorf("name what to export: references, patterns (--all) or rules (--rule)")
			}
			if since != "" && (filepath.Clean(since) == filepath.Clean(out) || filepath.Clean(since) == filepath.Clean(tarOut)) {
				return fmt.Errorf("--since names the export being written: write the incremental export elsewhere")
			}
			ctx := cmd.Context()
			c, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			log, err := newLogger(logConfig{Level: "warn", Format: c.Log.Format})
			if err != nil {
				return err
			}
			// The operator exports with the configuration file: client
			// authentication guards the proxy's listener, not this private
			// socket. Policy applies in full.
			c.Auth, c.Access = nil, nil
			rec := mirror.NewRecorder()
			in, err := assembleWith(ctx, c, log, rec.Wrap)
			if err != nil {
				return err
			}
			// The export pulls through the proxy itself, so that it gets
			// exactly what a client would, over a Unix socket in a directory
			// only this user can enter: no other local user reaches this
			// unauthenticated listener, and it costs less than TCP loopback.
			sockDir, err := os.MkdirTemp("", "trustproxy-export-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(sockDir)
			sock := filepath.Join(sockDir, "proxy.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: in.server, ReadHeaderTimeout: time.Minute}
			go hs.Serve(ln)
			defer in.cache.Close() // after the server: stops commits still running when the export is done
			defer hs.Close()
			pc, err := buildPolicy(c)
			if err != nil {
				return err
			}
			trusts := map[string]mirror.TrustRepository{}
			for n, t := range in.trusts {
				trusts[n] = t
			}
			o := mirror.ExportOptions{
				Source: mirror.HTTPSource{Base: "http://trustproxy-export", Client: socketClient(sock)},
				Policy: in.policy, Trusts: trusts, Recorder: rec, References: refs, Since: since,
				Patterns: patterns, Rules: rules, PolicyRules: pc.Rules,
				Version: version(), Logger: log,
			}
			view := newProgressView(cmd.ErrOrStderr(), "export", asJSON)
			o.Progress = view.update
			var ix *mirror.Index
			switch {
			case out != "":
				ix, err = mirror.ExportDir(ctx, out, o)
			case tarOut == "-":
				ix, err = mirror.ExportTar(ctx, cmd.OutOrStdout(), o)
			default:
				ix, err = exportTarFile(ctx, tarOut, o)
			}
			view.finish()
			if err != nil {
				return err
			}
			if asJSON && tarOut != "-" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ix)
			}
			for _, e := range ix.Entries {
				fmt.Fprintf(cmd.ErrOrStderr(), "exported %s  %s  (target %q, trust %s)\n", e.Reference, e.Digest, e.Target, e.Trust)
			}
			return nil
		},
	}
	addConfigFlag(cmd, &configPath)
	cmd.Flags().StringVar(&out, "out", "", "write the export into this `DIR`")
	cmd.Flags().StringVar(&tarOut, "tar", "", "write the export as a tar stream to this `FILE` (- for stdout)")
	cmd.Flags().StringVar(&since, "since", "", "leave out what this earlier export (`DIR or FILE`) carried; import it only where that one was imported")
	cmd.Flags().StringArrayVar(&all, "all", nil, "export every tag trust data vouches for in repositories matching this `PATTERN` (repeatable)")
	cmd.Flags().StringArrayVar(&rules, "rule", nil, "export every tag this policy rule's trust data vouches for (`NAME`, repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the export's index as JSON (progress: JSON lines on stderr)")
	_ = cmd.MarkFlagDirname("out")
	return cmd
}

// socketClient talks to the export's own proxy on its Unix socket, with a
// connection kept for every parallel copy and no compression.
func socketClient(sock string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 16, DisableCompression: true,
		ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10,
	}}
}

// exportTarFile writes the tar beside its final name and renames it into
// place only when complete.
func exportTarFile(ctx context.Context, name string, o mirror.ExportOptions) (*mirror.Index, error) {
	f, err := os.CreateTemp(filepath.Dir(name), ".export-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	ix, err := mirror.ExportTar(ctx, f, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	return ix, err
}
