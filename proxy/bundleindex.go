package proxy

import (
	"context"
	"errors"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
)

// A CNAB bundle signed by its bundle.json (CNAB Security, spec 303) is
// pulled by tag through the upstream's tag: TUF names the bundle.json, not
// the index that carries it. So that such a bundle is still served when the
// registry is down, the index last approved for the target is recorded
// next to the approvals; with the upstream unreachable the index comes from
// the cache and goes through exactly the same checks (CheckBundle against
// the current trust data), so a revoked or re-signed target is not served.

const bundleIndexSet = "bundle-index"

func bundleIndexKey(rt route, target string) string { return rt.repoKey() + "|" + target }

// rememberBundleIndex records index as the one that carried target's
// bundle.json at its last approval.
func (s *Server) rememberBundleIndex(ctx context.Context, rt route, target string, index digest.Digest) {
	if err := s.cache.PutRecord(ctx, bundleIndexSet, bundleIndexKey(rt, target), "index", []byte(index.String())); err != nil {
		s.log.Warn("record bundle index", zap.String("target", target), zap.Error(err))
	}
}

// bundleIndexFromCache returns the cached index last approved for target
// when fetching the tag upstream failed with upstreamErr; else upstreamErr.
func (s *Server) bundleIndexFromCache(ctx context.Context, rt route, target string, upstreamErr error) (*fetchedManifest, error) {
	recs, err := s.cache.Records(ctx, bundleIndexSet, bundleIndexKey(rt, target))
	if err != nil || len(recs) == 0 {
		return nil, upstreamErr
	}
	dg, err := digest.Parse(string(recs[0].Body))
	if err != nil {
		return nil, upstreamErr
	}
	mt, body, err := s.cache.GetManifest(ctx, dg)
	if err != nil {
		return nil, errors.Join(upstreamErr, err)
	}
	s.log.Info("upstream unavailable; bundle index from the cache", zap.String("target", target), zap.Stringer("index", dg), zap.Error(upstreamErr))
	return &fetchedManifest{digest: dg, mediaType: mt, body: body, cached: true}, nil
}
