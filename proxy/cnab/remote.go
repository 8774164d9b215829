package cnab

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// RemoteFetcher reads a bundle's repository straight from a registry with
// go-containerregistry. The publisher uses it; the proxy has its own Fetcher
// over upstream and cache.
type RemoteFetcher struct {
	Repo    name.Repository
	Options []remote.Option
}

var _ Fetcher = (*RemoteFetcher)(nil)

func (r *RemoteFetcher) opts(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, r.Options...), remote.WithContext(ctx))
}

// Manifest fetches a manifest by digest.
func (r *RemoteFetcher) Manifest(ctx context.Context, dgst digest.Digest) (string, []byte, error) {
	desc, err := remote.Get(r.Repo.Digest(dgst.String()), r.opts(ctx)...)
	if err != nil {
		return "", nil, fmt.Errorf("get manifest %s@%s: %w", r.Repo, dgst, err)
	}
	return string(desc.MediaType), desc.Manifest, nil
}

// Blob fetches a blob by digest, reading at most maxSize+1 bytes so that an
// oversized blob fails instead of filling memory.
func (r *RemoteFetcher) Blob(ctx context.Context, dgst digest.Digest, maxSize int64) ([]byte, error) {
	ref := r.Repo.Digest(dgst.String())
	l, err := remote.Layer(ref, r.opts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("get blob %s: %w", ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", ref, err)
	}
	if int64(len(b)) > maxSize {
		return nil, fmt.Errorf("blob %s is larger than %d bytes", ref, maxSize)
	}
	return b, nil
}

// ResolveReference fetches ref (a tag or digest) from its registry and
// resolves it as a bundle; it returns ErrNotBundle when ref names something
// else, so the publisher can fall back to signing it as an image.
func ResolveReference(ctx context.Context, ref name.Reference, opts ...remote.Option) (*Bundle, error) {
	f := &RemoteFetcher{Repo: ref.Context(), Options: opts}
	desc, err := remote.Get(ref, f.opts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	if len(desc.Manifest) > MaxManifestSize {
		return nil, fmt.Errorf("%s: %w: manifest is %d bytes", ref, ErrNotBundle, len(desc.Manifest))
	}
	mt := string(desc.MediaType)
	if !IsBundle(mt, desc.Manifest) {
		return nil, fmt.Errorf("%s (%s): %w", ref, mt, ErrNotBundle)
	}
	dg := digest.FromBytes(desc.Manifest)
	if d, ok := ref.(name.Digest); ok {
		// Resolve verifies the bytes against the digest the caller asked for.
		dg = digest.Digest(d.DigestStr())
	}
	b, err := Resolve(ctx, f, dg, mt, desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("resolve bundle %s: %w", ref, err)
	}
	return b, nil
}
