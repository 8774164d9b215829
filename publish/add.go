package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// AddOptions say how to sign one image reference.
type AddOptions struct {
	// TrustName replaces <registry host>/<repository> in the target name
	// (e.g. when adding from a mirror).
	TrustName string
	// Role is the targets role to add to; "" is the most specific role
	// delegated the name, else targets.
	Role string
	// Insecure allows a plain-HTTP registry.
	Insecure bool
	// Custom is extra custom metadata; it may not override what is computed.
	Custom map[string]string
	// BundleIndex signs a CNAB bundle's index (porter's bundle digest)
	// instead of its bundle.json.
	BundleIndex bool
	// InToto attaches in-toto metadata (CNAB Security 301).
	InToto InTotoFiles
	// Remote are extra registry options; credentials default to the docker
	// config (~/.docker/config.json and its credential helpers).
	Remote []remote.Option
}

// AddPlan is everything adding one image reference puts into a repository,
// decided before anything is changed.
type AddPlan struct {
	Role string
	// Target is <trust name>:<tag>.
	Target string
	// Desc describes what the target hashes: the manifest, or for a CNAB
	// bundle its bundle.json or index.
	Desc     Descriptor
	manifest []byte
	custom   map[string]any
	// bundleJSON is set for a CNAB bundle: the in-toto subject is its
	// bundle.json, whichever of bundle.json or the index the target hashes.
	bundleJSON digest.Digest
	// extra are further target files published with the image (in-toto
	// layouts, links and public keys named after the target's repository).
	extra []extraTarget
}

type extraTarget struct {
	name   string
	data   []byte
	custom map[string]any
}

// PlanAdd resolves ref from its registry and decides the targets to stage:
// <trust name>:<tag> with the sha256 and length of the exact manifest bytes
// and custom {"mediaType": ...}, plus any in-toto metadata.
func PlanAdd(ctx context.Context, ref string, o AddOptions) (*AddPlan, error) {
	r, err := ParseReference(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	target, err := TargetName(r, o.TrustName)
	if err != nil {
		return nil, err
	}
	opts := append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("trustproxy"), remote.WithContext(ctx)}, o.Remote...)
	desc, manifest, err := ResolveImage(ctx, r, opts...)
	if err != nil {
		return nil, err
	}
	custom, err := targetCustom(desc, o.Custom)
	if err != nil {
		return nil, err
	}
	p := &AddPlan{Role: o.Role, Target: target, Desc: desc, manifest: manifest, custom: custom}
	if cnab.IsBundle(desc.MediaType, manifest) {
		if err := p.planBundle(ctx, r, o.BundleIndex, opts...); err != nil {
			return nil, err
		}
	} else if o.BundleIndex {
		return nil, fmt.Errorf("sign the bundle index: %s is not a CNAB bundle", ref)
	}
	if err := o.InToto.plan(p, strings.TrimSuffix(target, ":"+tagOf(target))); err != nil {
		return nil, err
	}
	return p, nil
}

// targetCustom is a target's custom metadata: the manifest's media type
// plus extra entries, which may not override what is computed.
func targetCustom(desc Descriptor, extra map[string]string) (map[string]any, error) {
	custom := map[string]any{}
	if desc.MediaType != "" {
		custom["mediaType"] = desc.MediaType
	}
	for k, v := range extra {
		if _, ok := custom[k]; ok {
			return nil, fmt.Errorf("custom metadata %s: set from the registry, cannot be overridden", k)
		}
		custom[k] = v
	}
	return custom, nil
}

// planBundle turns a plan for a cnab-to-oci bundle index into one that
// signs the bundle's bundle.json (CNAB Security, spec 303), or with
// signIndex the index itself (porter's bundle digest). It refuses a bundle
// whose images the chosen subject would not bind.
func (p *AddPlan) planBundle(ctx context.Context, ref name.Reference, signIndex bool, opts ...remote.Option) error {
	b, err := cnab.Resolve(ctx, &cnab.RemoteFetcher{Repo: ref.Context(), Options: opts},
		digest.Digest(p.Desc.Digest), p.Desc.MediaType, p.manifest)
	if err != nil {
		return fmt.Errorf("resolve bundle %s: %w", ref, err)
	}
	kind := cnab.SubjectBundleJSON
	if signIndex {
		kind = cnab.SubjectIndex
	}
	if err := b.CheckBinding(kind); err != nil {
		return fmt.Errorf("bundle %s: %w (sign the index instead)", ref, err)
	}
	p.bundleJSON = b.BundleDigest
	if signIndex {
		return nil
	}
	d, body := b.Subject(kind)
	p.Desc = Descriptor{Digest: d.Digest.String(), Size: d.Size, MediaType: d.MediaType}
	p.manifest = body
	p.custom["mediaType"] = d.MediaType
	return nil
}

// Apply stages the plan in one edit: the image target and its extra
// targets (in-toto layout, keys, links) together, all or nothing. ctx
// cancelled before the staged roles are saved leaves the repository as it
// was (see AddTargetFiles).
func (p *AddPlan) Apply(ctx context.Context, repo *Repo) ([]Target, error) {
	files := make([]NewTargetFile, 0, 1+len(p.extra))
	files = append(files, NewTargetFile{Role: p.Role, Name: p.Target, Data: p.manifest, Custom: p.custom})
	for _, e := range p.extra {
		files = append(files, NewTargetFile{Name: e.name, Data: e.data, Custom: e.custom})
	}
	if d := digest.FromBytes(p.manifest); d.String() != p.Desc.Digest || int64(len(p.manifest)) != p.Desc.Size {
		return nil, fmt.Errorf("add %s: manifest is %s/%d bytes, resolved %s/%d", p.Target, d, len(p.manifest), p.Desc.Digest, p.Desc.Size)
	}
	return repo.AddTargetFiles(ctx, files)
}

// tagOf is the tag of a target name "<trust name>:<tag>"; a registry port
// in the trust name is not a tag.
func tagOf(target string) string {
	i := strings.LastIndex(target, ":")
	if i < 0 || strings.Contains(target[i:], "/") {
		return ""
	}
	return target[i+1:]
}
