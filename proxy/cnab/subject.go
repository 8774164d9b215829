package cnab

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SubjectKind says which bytes of a bundle a TUF target hashes.
type SubjectKind int

const (
	// SubjectBundleJSON is CNAB Security's thin-bundle subject (spec 303):
	// the bundle.json blob.
	SubjectBundleJSON SubjectKind = iota
	// SubjectIndex is porter's and cnab-to-oci's "bundle digest": the index.
	SubjectIndex
)

func (k SubjectKind) String() string {
	if k == SubjectIndex {
		return "index"
	}
	return "bundle.json"
}

// Subject returns what a target of kind k hashes: its descriptor (digest,
// length, the media type to record as the target's custom "mediaType") and
// the exact bytes, for hashes other than the descriptor's.
func (b *Bundle) Subject(k SubjectKind) (ocispec.Descriptor, []byte) {
	if k == SubjectIndex {
		return b.Index, b.IndexBody
	}
	return ocispec.Descriptor{MediaType: b.BundleMediaType, Digest: b.BundleDigest, Size: int64(len(b.BundleJSON))}, b.BundleJSON
}

// MatchTarget reports which part of the bundle a trusted digest and length
// name, if any.
func (b *Bundle) MatchTarget(d digest.Digest, length int64) (SubjectKind, bool) {
	for _, k := range []SubjectKind{SubjectBundleJSON, SubjectIndex} {
		if s, _ := b.Subject(k); s.Digest == d && s.Size == length {
			return k, true
		}
	}
	return 0, false
}

// CheckBinding refuses a bundle whose images a signature over k would not
// bind. The index names every image by digest; bundle.json binds an image
// only through its contentDigest, so an image without one could be swapped
// in an unsigned index.
func (b *Bundle) CheckBinding(k SubjectKind) error {
	if k == SubjectIndex {
		return nil
	}
	for _, img := range b.Images {
		if !img.Pinned {
			label := fmt.Sprintf("component %q", img.Name)
			if img.Role == RoleInvocation {
				label = fmt.Sprintf("invocation image %q", img.Reference)
			}
			return invalidf("%s: bundle.json has no contentDigest, so signing bundle.json does not bind %s", label, img.Descriptor.Digest)
		}
	}
	return nil
}

// Manifests lists every manifest of the bundle, for all-or-nothing
// admission: the index, the config manifest and the image entries (whose
// own children and blobs the caller derives from their manifests).
func (b *Bundle) Manifests() []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, 2+len(b.Images))
	out = append(out, b.Index, b.ConfigManifest)
	for _, img := range b.Images {
		out = append(out, img.Descriptor)
	}
	return out
}
