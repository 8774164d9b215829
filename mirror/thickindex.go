package mirror

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// A thick bundle carries bundle.json and the images, but not the two
// objects cnab-to-oci pushes around them: the config manifest and the OCI
// index. Clients pulling through the proxy ask for exactly those, so the
// import rebuilds them the way cnab-to-oci's PrepareForPush and
// ConvertBundleToOCIIndex build them (its first, non-fallback form:
// research/cnab-formats.md §2.2–2.4). Same input, same encoder, same
// bytes: a TUF target over the pushed index (porter's bundle digest) then
// verifies the rebuilt one. cnab-to-oci itself stays out of the product
// binary, so the few rules are restated here and a test holds them equal
// to cnab-to-oci's output.

// thickBundle is what of bundle.json goes into the index, decoded with
// cnab-go's field types so that re-encoding a part (maintainers, keywords)
// gives what cnab-to-oci's json.Marshal of cnab-go's struct gives.
type thickBundle struct {
	SchemaVersion    string                `json:"schemaVersion"`
	Name             string                `json:"name"`
	Version          string                `json:"version"`
	Description      string                `json:"description"`
	Keywords         []string              `json:"keywords"`
	Maintainers      []thickMaintainer     `json:"maintainers"`
	InvocationImages []thickImage          `json:"invocationImages"`
	Images           map[string]thickImage `json:"images"`
}

// thickMaintainer is cnab-go's bundle.Maintainer: field order and
// omitempty decide the org.opencontainers.image.authors annotation.
type thickMaintainer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
	URL   string `json:"url,omitempty"`
}

// thickImage is cnab-go's BaseImage, the fields that place an image.
type thickImage struct {
	ImageType     string `json:"imageType"`
	Image         string `json:"image"`
	ContentDigest string `json:"contentDigest"`
	Size          uint64 `json:"size"`
	MediaType     string `json:"mediaType"`
}

// thickPart is one image of the bundle with its place in the index.
type thickPart struct {
	label   string // `invocation image "…"` or `component "db"`
	name    string // component name, "" for the invocation image
	img     thickImage
	digest  digest.Digest
	mediaTy string
}

// parts lists the invocation image, then the components sorted by name
// (cnab-to-oci's order), each with its digest and media type; an image
// that bundle.json does not pin by contentDigest is refused, since nothing
// would bind the archive's copy of it to the signature.
func (b *thickBundle) parts() ([]thickPart, error) {
	if n := len(b.InvocationImages); n != 1 {
		return nil, fmt.Errorf("bundle.json lists %d invocation images; cnab-to-oci and porter support exactly one", n)
	}
	inv := b.InvocationImages[0]
	out := []thickPart{{label: fmt.Sprintf("invocation image %q", inv.Image), img: inv}}
	names := make([]string, 0, len(b.Images))
	for n := range b.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, thickPart{label: fmt.Sprintf("component %q", n), name: n, img: b.Images[n]})
	}
	for i := range out {
		p := &out[i]
		if p.img.ContentDigest == "" {
			return nil, fmt.Errorf("%s: bundle.json names no contentDigest, so a signature over it would not bind the archive's copy", p.label)
		}
		d, err := digest.Parse(p.img.ContentDigest)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("%s: bundle.json contentDigest %q is not a sha256 digest", p.label, p.img.ContentDigest)
		}
		if p.img.Size == 0 {
			return nil, fmt.Errorf("%s: bundle.json gives no size (cnab-to-oci refuses such an image)", p.label)
		}
		mt, err := partMediaType(p.img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.label, err)
		}
		p.digest, p.mediaTy = d, mt
	}
	return out, nil
}

// partMediaType is cnab-to-oci's getMediaType: the image's mediaType, else
// the one its imageType implies.
func partMediaType(img thickImage) (string, error) {
	mt := img.MediaType
	if mt == "" {
		switch img.ImageType {
		case "docker":
			mt = "application/vnd.docker.distribution.manifest.v2+json"
		case "oci":
			mt = ocispec.MediaTypeImageManifest
		default:
			return "", fmt.Errorf("unsupported imageType %q", img.ImageType)
		}
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return mt, nil
	}
	return "", fmt.Errorf("unsupported mediaType %q", mt)
}

// thinObjects are the rebuilt config manifest and index.
type thinObjects struct {
	configManifest []byte
	index          []byte
}

// rebuildThin builds the config manifest around bundleJSON (the archive's
// bytes, never re-serialised) and the index over it and the parts.
func rebuildThin(b *thickBundle, bundleJSON []byte, parts []thickPart) (thinObjects, error) {
	var out thinObjects
	cfg := ocispec.Manifest{
		Versioned: ocispecs.Versioned{SchemaVersion: 2},
		Config:    ocispec.Descriptor{MediaType: cnab.MediaTypeCNABConfig, Digest: digest.FromBytes(bundleJSON), Size: int64(len(bundleJSON))},
	}
	var err error
	if out.configManifest, err = json.Marshal(&cfg); err != nil {
		return out, err
	}
	annotations := map[string]string{
		"io.cnab.runtime_version":         b.SchemaVersion,
		ocispec.AnnotationTitle:           b.Name,
		ocispec.AnnotationVersion:         b.Version,
		ocispec.AnnotationDescription:     b.Description,
		"org.opencontainers.artifactType": "application/vnd.cnab.manifest.v1",
	}
	if b.Maintainers != nil {
		m, err := json.Marshal(b.Maintainers)
		if err != nil {
			return out, err
		}
		annotations[ocispec.AnnotationAuthors] = string(m)
	}
	if b.Keywords != nil {
		k, err := json.Marshal(b.Keywords)
		if err != nil {
			return out, err
		}
		annotations["io.cnab.keywords"] = string(k)
	}
	manifests := []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(out.configManifest), Size: int64(len(out.configManifest)),
		Annotations: map[string]string{cnab.AnnotationManifestType: cnab.ManifestTypeConfig},
	}}
	for _, p := range parts {
		d := ocispec.Descriptor{MediaType: p.mediaTy, Digest: p.digest, Size: int64(p.img.Size),
			Annotations: map[string]string{cnab.AnnotationManifestType: cnab.ManifestTypeInvocation}}
		if p.name != "" {
			d.Annotations = map[string]string{cnab.AnnotationManifestType: cnab.ManifestTypeComponent, cnab.AnnotationComponentName: p.name}
		}
		manifests = append(manifests, d)
	}
	ix := ocispec.Index{Versioned: ocispecs.Versioned{SchemaVersion: 2}, Manifests: manifests, Annotations: annotations}
	out.index, err = json.Marshal(&ix)
	return out, err
}
