package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/mirror"
)

// thickFlags are mirror import's flags for CNAB thick bundles (porter
// archive): the import recognises one by its gzip header.
type thickFlags struct {
	bundle   string
	trustDir []string
}

func (f *thickFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.bundle, "bundle", "", "a CNAB thick bundle (porter archive) is served as `REF` (<upstream>/<repository>:<tag>)")
	cmd.Flags().StringArrayVar(&f.trustDir, "trust-dir", nil,
		"`NAME=DIR`: verify a thick bundle against trust repository NAME's metadata carried in DIR/metadata (and DIR/targets), and load it; default: this side's own trust directories")
}

// run imports src if it is a thick bundle. It returns neither a result
// nor an error when src is an export, for the plain import; stdin is then
// re-seated on cmd so that import still reads it whole.
func (f *thickFlags) run(ctx context.Context, cmd *cobra.Command, src string, o mirror.ImportOptions) (*mirror.ImportResult, error) {
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		if f.bundle != "" {
			return nil, fmt.Errorf("--bundle: %s is a directory; a CNAB thick bundle is a gzipped tar (porter archive)", src)
		}
		return nil, nil
	}
	var br *bufio.Reader
	if src == "-" {
		br = bufio.NewReader(cmd.InOrStdin())
		cmd.SetIn(br)
	} else {
		fh, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		br = bufio.NewReader(fh)
	}
	if !mirror.IsThickBundle(br) {
		if f.bundle != "" {
			return nil, fmt.Errorf("--bundle: %s is not gzip-compressed, so not a CNAB thick bundle (porter archive)", src)
		}
		return nil, nil
	}
	if f.bundle == "" {
		return nil, fmt.Errorf("%s is gzip-compressed: a CNAB thick bundle (porter archive)? Name the reference it is served as: --bundle <upstream>/<repository>:<tag>", src)
	}
	t := mirror.ThickOptions{Reference: f.bundle, TrustDirs: map[string]string{}}
	for _, s := range f.trustDir {
		name, dir, ok := strings.Cut(s, "=")
		if !ok || name == "" || dir == "" {
			return nil, fmt.Errorf("--trust-dir %q: want NAME=DIR", s)
		}
		t.TrustDirs[name] = dir
	}
	res, err := mirror.ImportThick(ctx, br, t, o)
	if err != nil {
		return nil, err
	}
	// stdout carries the result (--json); this line is for the person.
	if len(res.Entries) == 1 {
		fmt.Fprintf(cmd.ErrOrStderr(), "CNAB thick bundle verified: %s is index %s\n", res.Entries[0].Reference, res.Entries[0].Digest)
	}
	return res, nil
}
