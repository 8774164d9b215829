package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"

	"github.com/trustproxy/trustproxy/cache"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/proxy/cnab"
)

// checkBundle resolves a cnab-to-oci bundle index and asks policy about the
// bundle as a unit. On approval the grant covers the config manifest, the
// bundle.json blob and every invocation and component image; their own
// children and blobs are covered as they are fetched. If any part fails to
// resolve or cross-check, nothing of the bundle is served.
func (s *Server) checkBundle(ctx context.Context, rt route, subj policy.Subject, m *fetchedManifest) (policy.Decision, *cnab.Bundle, error) {
	b, err := cnab.Resolve(ctx, bundleFetcher{s: s, rt: rt}, m.digest, m.mediaType, m.body)
	if err != nil {
		if errors.Is(err, cnab.ErrInvalid) {
			d := s.policy.Deny(subj, fmt.Sprintf("CNAB bundle %s: %v", m.digest, err))
			return d, nil, nil
		}
		return policy.Decision{}, nil, err
	}
	d := s.policy.CheckBundle(ctx, subj, policy.Bundle{
		Index:      policy.Artifact{Digest: b.Index.Digest, Length: b.Index.Size},
		BundleJSON: policy.Artifact{Digest: b.BundleDigest, Length: int64(len(b.BundleJSON))},
		Binds: func(subject string) error {
			if subject == "index" {
				return b.CheckBinding(cnab.SubjectIndex)
			}
			return b.CheckBinding(cnab.SubjectBundleJSON)
		},
	})
	return d, b, nil
}

// checkBundleImages is the all-or-nothing half of admission, run once policy
// approved the bundle and before anything of it is served: every image
// manifest the registry has must still be what the signed bundle.json names.
// A part served with other bytes (overwritten upstream) denies the whole
// bundle; an upstream that cannot be reached fails the request (nothing is
// served either way). failed says the check failed and d is the decision
// that replaces the approval (a denial, or under audit a warning).
func (s *Server) checkBundleImages(ctx context.Context, rt route, subj policy.Subject, b *cnab.Bundle) (d policy.Decision, failed bool, err error) {
	missing, err := b.CheckImages(ctx, bundleFetcher{s: s, rt: rt})
	if err == nil {
		if len(missing) > 0 {
			s.log.Info("CNAB bundle admitted with images the upstream does not have", zap.String("repository", rt.repoKey()),
				zap.String("index", b.Index.Digest.String()), zap.Strings("missing", missing))
		}
		return policy.Decision{}, false, nil
	}
	if !errors.Is(err, cnab.ErrInvalid) {
		return policy.Decision{}, false, err
	}
	return s.policy.Deny(subj, fmt.Sprintf("CNAB bundle %s: %v", b.Index.Digest, err)), true, nil
}

// coverBundle records everything an approved bundle names under g.
func (s *Server) coverBundle(ctx context.Context, rt route, b *cnab.Bundle, g *grant) {
	items := []covered{{b.ConfigManifest.Digest, b.ConfigManifest.Size}}
	for _, c := range b.ConfigBlobs {
		items = append(items, covered{c.Digest, c.Size})
	}
	for _, img := range b.Images {
		items = append(items, covered{img.Descriptor.Digest, img.Descriptor.Size})
	}
	s.approvals.cover(ctx, rt.repoKey(), items, g)
}

// bundleFetcher gives cnab.Resolve the bundle's parts from the cache or the
// upstream. It commits nothing: only approved content is cached, and the
// bundle is not approved yet.
type bundleFetcher struct {
	s  *Server
	rt route
}

// Manifest returns what the cache or the upstream has under d without
// checking it: cnab verifies every byte and names the part that differs.
func (f bundleFetcher) Manifest(ctx context.Context, d digest.Digest) (string, []byte, error) {
	if mt, body, err := f.s.cache.GetManifest(ctx, d); err == nil {
		return mt, body, nil
	}
	m, err := f.s.fetchManifest(ctx, f.rt, d.String(), []string{acceptAll})
	var oe *ociError
	if errors.As(err, &oe) && oe.Status == http.StatusNotFound {
		return "", nil, fmt.Errorf("%w: %w", cnab.ErrNotFound, err)
	}
	if err != nil {
		return "", nil, err
	}
	return m.mediaType, m.body, nil
}

func (f bundleFetcher) Blob(ctx context.Context, d digest.Digest, maxSize int64) ([]byte, error) {
	if size, err := f.s.cache.StatBlob(ctx, d); err == nil && size <= maxSize {
		b, err := f.s.cache.Blob(ctx, d, size, func(context.Context) (io.ReadCloser, int64, error) {
			return nil, 0, cache.ErrNotFound // evicted meanwhile: fall through to upstream
		})
		if err == nil {
			if rc, err := b.NewReader(ctx, 0); err == nil {
				defer rc.Close()
				return io.ReadAll(io.LimitReader(rc, maxSize+1))
			}
		}
	} else if err != nil && !errors.Is(err, cache.ErrNotFound) {
		return nil, err
	}
	body, _, err := f.s.fetchBlob(ctx, f.rt, d, -1, &requestInfo{})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxSize+1))
	if err != nil {
		return nil, errBadGateway(fmt.Sprintf("trustproxy: blob %s@%s: %v", f.rt.repoKey(), d, err))
	}
	if int64(len(data)) > maxSize {
		return nil, &ociError{Status: http.StatusForbidden, Code: "DENIED",
			Message: fmt.Sprintf("trustproxy: blob %s@%s is larger than %d bytes", f.rt.repoKey(), d, maxSize)}
	}
	return data, nil
}
