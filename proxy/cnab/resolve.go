package cnab

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher gives raw bytes by digest from the bundle's repository. The proxy
// implements it over its upstream and cache; RemoteFetcher over a registry.
// Resolve re-verifies everything a Fetcher returns.
type Fetcher interface {
	// Manifest returns a manifest's bytes and the Content-Type it was
	// served with ("" if unknown).
	Manifest(ctx context.Context, dgst digest.Digest) (mediaType string, body []byte, err error)
	// Blob returns a blob's bytes, failing rather than reading more than
	// maxSize bytes.
	Blob(ctx context.Context, dgst digest.Digest, maxSize int64) ([]byte, error)
}

// Role says what an image is to the bundle.
type Role string

const (
	RoleInvocation Role = ManifestTypeInvocation
	RoleComponent  Role = ManifestTypeComponent
)

// Image is an invocation or component image of a resolved bundle.
type Image struct {
	// Name is the component name (the key in bundle.json "images"), or
	// "invocation" for the invocation image.
	Name string
	Role Role
	// Reference is the image's original reference in bundle.json ("image"),
	// the key of the bundle's relocation map.
	Reference string
	// Descriptor is the index entry: the image manifest (or multi-arch
	// index) in the bundle's repository, with its annotations as served.
	Descriptor ocispec.Descriptor
	// Pinned is true when bundle.json's contentDigest names
	// Descriptor.Digest, so that a signature over bundle.json binds this
	// image. cnab-to-oci always sets it; a hand-written bundle.json may not.
	Pinned bool
}

// Bundle is a resolved, cross-checked cnab-to-oci bundle. Byte slices are
// exactly what the registry served.
type Bundle struct {
	// Index is the top-level object: digest, size and media type as served.
	Index     ocispec.Descriptor
	IndexBody []byte
	// ConfigManifest is the index's config entry (digest, size, media type).
	ConfigManifest ocispec.Descriptor
	// ConfigBlobs is every blob the config manifest references: the
	// bundle.json blob (also the sole layer in the Docker schema2 form).
	ConfigBlobs []ocispec.Descriptor
	// BundleJSON is the bundle.json blob, never re-serialised.
	BundleJSON   []byte
	BundleDigest digest.Digest
	// BundleMediaType is the config media type the manifest gives bundle.json.
	BundleMediaType string
	// Images are the invocation image first, then the components in index order.
	Images []Image
}

// Resolve checks that index (served with indexMediaType, and named by
// indexDigest) is a well-formed cnab-to-oci bundle, fetches its config
// manifest and bundle.json through f, and cross-checks every image entry
// against bundle.json. Errors about content wrap ErrInvalid and name the
// image and field; fetch errors are returned wrapped as they came.
func Resolve(ctx context.Context, f Fetcher, indexDigest digest.Digest, indexMediaType string, index []byte) (*Bundle, error) {
	if len(index) > MaxManifestSize {
		return nil, invalidf("index is %d bytes, more than the %d allowed", len(index), MaxManifestSize)
	}
	if err := verifyBytes("index", indexDigest, -1, index); err != nil {
		return nil, err
	}
	if err := checkStrictJSON(index); err != nil {
		return nil, invalidf("index %s: %v", indexDigest, err)
	}
	mt, ix, err := decodeIndex(indexMediaType, index)
	if err != nil {
		return nil, invalidf("index %s: %v", indexDigest, err)
	}
	bi, err := classifyIndex(mt, ix)
	if err != nil {
		return nil, err
	}

	cfg := bi.config
	servedType, body, err := f.Manifest(ctx, cfg.Digest)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle config manifest %s: %w", cfg.Digest, err)
	}
	if int64(len(body)) > MaxManifestSize {
		return nil, invalidf("config manifest %s is %d bytes, more than the %d allowed", cfg.Digest, len(body), MaxManifestSize)
	}
	if err := verifyBytes("config manifest", cfg.Digest, cfg.Size, body); err != nil {
		return nil, err
	}
	if st := baseMediaType(servedType); st != "" && st != cfg.MediaType {
		return nil, invalidf("config manifest %s: served as %q, index entry says %q", cfg.Digest, st, cfg.MediaType)
	}
	cm, err := parseConfigManifest(cfg.MediaType, body)
	if err != nil {
		return nil, err
	}

	bd := cm.config
	blob, err := f.Blob(ctx, bd.Digest, bd.Size)
	if err != nil {
		return nil, fmt.Errorf("fetch bundle.json blob %s: %w", bd.Digest, err)
	}
	if err := verifyBytes("bundle.json blob", bd.Digest, bd.Size, blob); err != nil {
		return nil, err
	}
	doc, err := parseBundleJSON(blob)
	if err != nil {
		return nil, err
	}
	images, err := relocate(bi, doc)
	if err != nil {
		return nil, err
	}
	return &Bundle{
		Index:           ocispec.Descriptor{MediaType: mt, Digest: indexDigest, Size: int64(len(index))},
		IndexBody:       index,
		ConfigManifest:  cfg,
		ConfigBlobs:     cm.blobs,
		BundleJSON:      blob,
		BundleDigest:    bd.Digest,
		BundleMediaType: bd.MediaType,
		Images:          images,
	}, nil
}
