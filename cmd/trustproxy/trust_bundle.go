package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/proxy/cnab"
	"github.com/trustproxy/trustproxy/publish"
)

// planBundle turns a request for a cnab-to-oci bundle index into one that
// signs the bundle's bundle.json (CNAB Security, spec 303), or with
// signIndex the index itself (porter's bundle digest). It refuses a bundle
// whose images the chosen subject would not bind.
func planBundle(ctx context.Context, req *trustAddRequest, ref name.Reference, signIndex bool, opts ...remote.Option) error {
	b, err := cnab.Resolve(ctx, &cnab.RemoteFetcher{Repo: ref.Context(), Options: opts},
		digest.Digest(req.desc.Digest), req.desc.MediaType, req.manifest)
	if err != nil {
		return fmt.Errorf("resolve bundle %s: %w", ref, err)
	}
	kind := cnab.SubjectBundleJSON
	if signIndex {
		kind = cnab.SubjectIndex
	}
	if err := b.CheckBinding(kind); err != nil {
		return fmt.Errorf("bundle %s: %w (sign the index with --bundle-index instead)", ref, err)
	}
	req.bundleJSON = b.BundleDigest
	if signIndex {
		return nil
	}
	d, body := b.Subject(kind)
	req.desc = publish.Descriptor{Digest: d.Digest.String(), Size: d.Size, MediaType: d.MediaType}
	req.manifest = body
	req.custom["mediaType"] = d.MediaType
	return nil
}
