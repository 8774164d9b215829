package cnab

import (
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// relocate pairs every image entry of the index with its bundle.json entry,
// the way cnab-to-oci's GenerateRelocationMap does (the invocation entry is
// invocationImages[0], a component entry is images[io.cnab.component.name]),
// and then does what cnab-to-oci leaves out: both sides must list the same
// images, and each descriptor must agree with bundle.json's contentDigest,
// size and mediaType where bundle.json states them.
func relocate(bi *bundleIndex, doc *bundleDoc) ([]Image, error) {
	switch n := len(doc.InvocationImages); {
	case n == 0:
		return nil, invalidf("bundle.json lists no invocation image")
	case n > 1:
		return nil, invalidf("bundle.json lists %d invocation images; cnab-to-oci stores exactly one", n)
	}
	inv := doc.InvocationImages[0]
	images := make([]Image, 0, 1+len(bi.components))
	label := fmt.Sprintf("invocation image %q", inv.Image)
	pinned, err := crossCheck(label, bi.invocation, inv)
	if err != nil {
		return nil, err
	}
	images = append(images, Image{Name: ManifestTypeInvocation, Role: RoleInvocation, Reference: inv.Image, Descriptor: bi.invocation, Pinned: pinned})

	seen := make(map[string]bool, len(bi.components))
	for _, c := range bi.components {
		img, ok := doc.Images[c.name]
		if !ok {
			return nil, invalidf("component %q: index entry %s names no image in bundle.json", c.name, c.desc.Digest)
		}
		seen[c.name] = true
		pinned, err := crossCheck(fmt.Sprintf("component %q", c.name), c.desc, img)
		if err != nil {
			return nil, err
		}
		images = append(images, Image{Name: c.name, Role: RoleComponent, Reference: img.Image, Descriptor: c.desc, Pinned: pinned})
	}
	for name, img := range doc.Images {
		if !seen[name] {
			return nil, invalidf("component %q: bundle.json image %q has no index entry", name, img.Image)
		}
	}
	return images, nil
}

// crossCheck compares one index descriptor with its bundle.json entry.
// pinned reports whether bundle.json names the digest (contentDigest), i.e.
// whether a signature over bundle.json binds this image.
func crossCheck(label string, d ocispec.Descriptor, img bundleImage) (pinned bool, err error) {
	if img.ContentDigest != "" {
		want, err := digest.Parse(img.ContentDigest)
		if err != nil {
			return false, invalidf("%s: bundle.json contentDigest %q: %v", label, img.ContentDigest, err)
		}
		if d.Digest != want {
			return false, invalidf("%s: descriptor digest %s differs from bundle.json contentDigest %s", label, d.Digest, want)
		}
		pinned = true
	}
	size, err := img.size()
	if err != nil {
		return false, invalidf("%s: bundle.json %v", label, err)
	}
	if size != 0 && size != d.Size {
		return false, invalidf("%s: descriptor size %d differs from bundle.json size %d", label, d.Size, size)
	}
	if img.MediaType != "" && img.MediaType != d.MediaType {
		return false, invalidf("%s: descriptor media type %q differs from bundle.json mediaType %q", label, d.MediaType, img.MediaType)
	}
	return pinned, nil
}
