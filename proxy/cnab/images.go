package cnab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// maxImageChildren bounds the platform manifests checked per multi-arch
// image; an index with more is refused.
const maxImageChildren = 256

// imageCheckConcurrency bounds the manifest fetches in flight for one bundle.
const imageCheckConcurrency = 4

// CheckImages fetches the manifest of every invocation and component image,
// and of each platform manifest of a multi-arch image, and checks each
// against its descriptor: digest, size and media type, which Resolve already
// tied to bundle.json's contentDigest. It is what makes a bundle all or
// nothing at admission: a part the registry no longer serves as signed (a
// component overwritten or deleted upstream) fails the whole bundle before
// any of it is served. Manifests are small; blobs stay lazy and are verified
// as they stream. Content errors wrap ErrInvalid; fetch errors are returned
// wrapped as they came.
//
// A manifest the registry does not have (the Fetcher's error wraps
// ErrNotFound) is not a denial: there are no bytes that could be served in
// its place, and a client asking for it gets the registry's 404. Such images
// are returned in missing.
func (b *Bundle) CheckImages(ctx context.Context, f Fetcher) (missing []string, err error) {
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(imageCheckConcurrency)
	for _, img := range b.Images {
		label := fmt.Sprintf("component %q", img.Name)
		if img.Role == RoleInvocation {
			label = fmt.Sprintf("invocation image %q", img.Reference)
		}
		g.Go(func() error {
			children, err := checkImageManifest(ctx, f, label, img.Descriptor)
			if errors.Is(err, ErrNotFound) {
				mu.Lock()
				missing = append(missing, label)
				mu.Unlock()
				return nil
			}
			if err != nil {
				return err
			}
			if len(children) > maxImageChildren {
				return invalidf("%s: index %s lists %d manifests, more than the %d allowed", label,
					img.Descriptor.Digest, len(children), maxImageChildren)
			}
			for _, c := range children {
				_, err := checkImageManifest(ctx, f, fmt.Sprintf("%s platform manifest", label), c)
				if errors.Is(err, ErrNotFound) {
					mu.Lock()
					missing = append(missing, fmt.Sprintf("%s platform manifest %s", label, c.Digest))
					mu.Unlock()
					continue
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Strings(missing)
	return missing, nil
}

// checkImageManifest verifies one manifest against its descriptor and
// returns the children it lists, if it is an index.
func checkImageManifest(ctx context.Context, f Fetcher, label string, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	served, body, err := f.Manifest(ctx, d.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: fetch manifest %s: %w", label, d.Digest, err)
	}
	if int64(len(body)) > MaxManifestSize {
		return nil, invalidf("%s: manifest %s is %d bytes, more than the %d allowed", label, d.Digest, len(body), MaxManifestSize)
	}
	if got := d.Digest.Algorithm().FromBytes(body); got != d.Digest || int64(len(body)) != d.Size {
		return nil, invalidf("%s: the registry serves other bytes for manifest %s (%s, %d bytes; the signed bundle "+
			"names %s, %d bytes): the image was overwritten upstream, so none of the bundle is served",
			label, d.Digest, got, len(body), d.Digest, d.Size)
	}
	var m struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, invalidf("%s: manifest %s: %v", label, d.Digest, err)
	}
	mt := baseMediaType(served)
	if mt == "" {
		mt = m.MediaType
	}
	if mt != "" && d.MediaType != "" && mt != d.MediaType {
		return nil, invalidf("%s: manifest %s is %q, its descriptor says %q", label, d.Digest, mt, d.MediaType)
	}
	if isIndexType(d.MediaType) {
		return m.Manifests, nil
	}
	return nil, nil
}
