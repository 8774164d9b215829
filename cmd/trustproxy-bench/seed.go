//go:build bench

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// prngLayer is a layer of incompressible bytes generated from a seed, so
// hundreds of MiB are pushed without holding them in memory. Its digest is
// computed by generating it once.
type prngLayer struct {
	seed   uint64
	size   int64
	digest v1.Hash
}

func newPRNGLayer(seed uint64, size int64) (*prngLayer, error) {
	h := sha256.New()
	if _, err := io.Copy(h, prngReader(seed, size)); err != nil {
		return nil, err
	}
	d, err := v1.NewHash(fmt.Sprintf("sha256:%x", h.Sum(nil)))
	if err != nil {
		return nil, err
	}
	return &prngLayer{seed: seed, size: size, digest: d}, nil
}

func prngReader(seed uint64, size int64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(key), size)
}

func (l *prngLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *prngLayer) DiffID() (v1.Hash, error) { return l.digest, nil }
func (l *prngLayer) Size() (int64, error)     { return l.size, nil }
func (l *prngLayer) MediaType() (types.MediaType, error) {
	return types.OCIUncompressedLayer, nil
}
func (l *prngLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(prngReader(l.seed, l.size)), nil
}
func (l *prngLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

// seededImage is an image pushed to the upstream.
type seededImage struct {
	repoTag  string // e.g. bench/big:v1
	repo     string
	digest   v1.Hash
	layers   []v1.Hash
	sizes    []int64
	manifest []byte
}

// pushImage pushes an OCI image of len(layerSizes) PRNG layers to
// upstreamHost/repo:tag.
func pushImage(ctx context.Context, upstreamHost, repo, tag string, seed uint64, layerSizes []int64) (*seededImage, error) {
	ref, err := name.ParseReference(upstreamHost+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	si := &seededImage{repoTag: repo + ":" + tag, repo: repo}
	var adds []mutate.Addendum
	for i, sz := range layerSizes {
		l, err := newPRNGLayer(seed*1000+uint64(i), sz)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCIUncompressedLayer})
		si.layers = append(si.layers, l.digest)
		si.sizes = append(si.sizes, sz)
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	if si.digest, err = img.Digest(); err != nil {
		return nil, err
	}
	if si.manifest, err = img.RawManifest(); err != nil {
		return nil, err
	}
	return si, nil
}
