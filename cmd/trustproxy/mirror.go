package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/mirror"
)

func newMirrorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Air gap: export verified content with its trust data; import and verify it offline",
		Long: `Carry verified content across an air gap.

mirror export pulls references through the verifying proxy the online
side's configuration describes and writes them, with the TUF metadata (and
in-toto target files) that vouched for them, as an OCI image layout.

mirror import verifies an export against the offline side's pinned roots,
persisted trust state and policy, and only then loads it into that side's
cache and trust directories. A tampered, truncated, rolled-back or
unsigned-extra export is refused whole.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newMirrorExportCmd(), newMirrorImportCmd())
	return cmd
}

// importOptions maps the offline side's configuration.
func importOptions(ctx context.Context, c *fileConfig, log *zap.Logger) (mirror.ImportOptions, func(), error) {
	pc, err := buildPolicy(c)
	if err != nil {
		return mirror.ImportOptions{}, nil, err
	}
	trusts := map[string]mirror.ImportTrust{}
	for name, t := range c.Trust {
		if t.Notary != nil {
			continue // mirrors carry TUF trust data only
		}
		it := mirror.ImportTrust{Root: t.Root, StateDir: filepath.Join(c.State, "trust", name),
			AllowExpiredFor: time.Duration(t.AllowExpiredFor)}
		if local := localDir(t.Metadata); local != "" {
			it.Metadata = local
			it.Targets = localDir(t.Targets)
			if t.Targets == "" {
				it.Targets = filepath.Join(filepath.Dir(local), "targets")
			}
		}
		trusts[name] = it
	}
	store, err := cache.NewFromConfig(ctx, c.Storage.Driver, c.Storage.Parameters, cache.Options{
		MaxSize: c.Storage.MaxSize, SpoolDir: c.Storage.SpoolDir, Logger: log.Named("cache"),
	})
	if err != nil {
		return mirror.ImportOptions{}, nil, fmt.Errorf("storage: %w", err)
	}
	return mirror.ImportOptions{Policy: pc, Trusts: trusts, Cache: store, StateDir: c.State, Logger: log},
		func() { store.Close() }, nil
}

// localDir is the directory a trust location names, "" for a URL.
func localDir(loc string) string {
	if p, ok := strings.CutPrefix(loc, "file://"); ok {
		return p
	}
	if strings.Contains(loc, "://") {
		return ""
	}
	return loc
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return "trustproxy " + bi.Main.Version
	}
	return "trustproxy (unknown version)"
}
