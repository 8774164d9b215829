package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trustproxy/trustproxy/publish"
)

func newTrustAddCmd() *cobra.Command {
	var (
		f   repoFlags
		o   publish.AddOptions
		now bool
	)
	cmd := &cobra.Command{
		Use:   "add <image ref> --repo DIR",
		Short: "Sign an image tag: resolve its digest and stage a target",
		Long: `Resolve the tag's manifest from its registry and stage target
<trust name>:<tag> with the sha256 and length of the exact manifest bytes
and custom {"mediaType": ...}. The trust name defaults to
<registry host>/<repository>, Docker Hub spelled docker.io
(docker.io/library/alpine:3.20). The manifest is also stored under targets/
so any TUF client can download it. Registry credentials come from the
docker config (~/.docker/config.json).`,
		Example: `  trustproxy trust add docker.io/library/alpine:3.20 --repo tuf/repository
  trustproxy trust add --repo tuf/repository --keys tuf/keys --publish ghcr.io/acme/app:1.4.2`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: noFileCompletion,
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := f.openToStage(now)
			if err != nil {
				return err
			}
			plan, err := publish.PlanAdd(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			added, err := plan.Apply(cmd.Context(), repo)
			if err != nil {
				return err
			}
			t := added[0]
			summary := fmt.Sprintf("added %s to role %s: sha256:%s, %d bytes", t.Name, t.Role, t.SHA256, t.Length)
			if plan.Desc.MediaType != "" {
				summary += ", " + plan.Desc.MediaType
			}
			if len(added) > 1 {
				summary += fmt.Sprintf(", with %d more target(s)", len(added)-1)
			}
			return finishTrustEdit(cmd.Context(), repo, now, summary, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd, keysPublish, false)
	fl := cmd.Flags()
	fl.StringVar(&o.TrustName, "name", "", "trust `NAME` instead of <registry host>/<repository> (e.g. when adding from a mirror)")
	fl.StringVar(&o.Role, "role", "", "targets `ROLE` to add to (default: the most specific role delegated the name, else targets)")
	fl.BoolVar(&o.Insecure, "insecure", false, "allow a plain-HTTP registry")
	fl.BoolVar(&now, "publish", false, "publish right away (needs --keys)")
	fl.StringToStringVar(&o.Custom, "custom", nil, "extra custom metadata `KEY=VALUE` (repeatable)")
	fl.BoolVar(&o.BundleIndex, "bundle-index", false, "for a CNAB bundle, sign the index digest (porter's bundle digest) instead of bundle.json")
	fl.StringVar(&o.InToto.Layout, "in-toto-layout", "", "in-toto root layout `FILE` to publish with the target")
	fl.StringVar(&o.InToto.Links, "in-toto-links", "", "`DIR` of in-toto link files (*.link) for this artifact")
	fl.StringSliceVar(&o.InToto.PubKeys, "in-toto-pubkey", nil, "layout public key `FILE` (PEM or securesystemslib JSON; repeatable)")
	_ = cmd.MarkFlagDirname("in-toto-links")
	return cmd
}
