// Package benchgen generates the synthetic trust data that the Go
// benchmarks (policy, trustfetch) and the trustproxy-bench harness measure
// against, so that both speak of the same index: target i is
// <upstream>/fill/r<i/100>:t<i%100> and vouches for Manifest(i).
package benchgen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/trustproxy/trustproxy/publish"
)

// RepoTag is target i's repository and tag: 100 tags per repository, so
// 100,000 targets span 1,000 repositories.
func RepoTag(i int) (repo, tag string) {
	return fmt.Sprintf("fill/r%04d", i/100), fmt.Sprintf("t%03d", i%100)
}

// Name is target i's TUF target name on upstream.
func Name(upstream string, i int) string {
	repo, tag := RepoTag(i)
	return upstream + "/" + repo + ":" + tag
}

// Manifest is the exact manifest target i vouches for: a small OCI image
// manifest with made-up (but well-formed) descriptors.
func Manifest(i int) []byte {
	cfg := sha256.Sum256([]byte(fmt.Sprintf("config-%d", i)))
	layer := sha256.Sum256([]byte(fmt.Sprintf("layer-%d", i)))
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s",`+
		`"config":{"mediaType":"%s","digest":"sha256:%s","size":%d},`+
		`"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%d}]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, hex.EncodeToString(cfg[:]), 400+i%1000,
		ocispec.MediaTypeImageLayerGzip, hex.EncodeToString(layer[:]), 1<<20+i))
}

// Targets are n targets on upstream for publish.Repo.AddTargets.
func Targets(upstream string, n int) []publish.NewTarget {
	custom := map[string]any{"mediaType": ocispec.MediaTypeImageManifest}
	ts := make([]publish.NewTarget, n)
	for i := range n {
		ts[i] = targetAt(upstream, i, custom)
	}
	return ts
}

func targetAt(upstream string, i int, custom map[string]any) publish.NewTarget {
	body := Manifest(i)
	sum := sha256.Sum256(body)
	return publish.NewTarget{Name: Name(upstream, i), Length: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Custom: custom}
}

// HashBinRepo is a trust repository published by trustproxy's own
// publisher with succinct hash-bin delegations.
type HashBinRepo struct {
	Repo    *publish.Repo
	Dir     string // repository directory: serve it, metadata under Dir/metadata
	KeysDir string
	// Root is the pinned root (1.root.json).
	Root []byte
}

// PublishHashBins creates a repository in repoDir (keys in keysDir, outside
// it) whose targets delegates to bins hash bins (0: publish.HashBinsFor(n)),
// stages targets Name(upstream, 0..n-1) in one bulk edit and publishes.
// Add target n later with AddOne to measure a one-target refresh.
func PublishHashBins(ctx context.Context, repoDir, keysDir, upstream string, n, bins int) (*HashBinRepo, error) {
	if bins == 0 {
		bins = publish.HashBinsFor(n)
	}
	r, err := publish.Init(ctx, repoDir, keysDir, publish.InitOptions{HashBins: bins})
	if err != nil {
		return nil, fmt.Errorf("benchgen: %w", err)
	}
	if _, err := r.AddTargets("", Targets(upstream, n)); err != nil {
		return nil, fmt.Errorf("benchgen: stage %d targets: %w", n, err)
	}
	if _, err := r.Publish(ctx); err != nil {
		return nil, fmt.Errorf("benchgen: publish %d targets: %w", n, err)
	}
	root, err := os.ReadFile(r.RootPath())
	if err != nil {
		return nil, fmt.Errorf("benchgen: %w", err)
	}
	return &HashBinRepo{Repo: r, Dir: repoDir, KeysDir: keysDir, Root: root}, nil
}

// AddOne stages target i (Name(upstream, i), vouching for Manifest(i)) and
// publishes: one hash bin, snapshot and timestamp change. It returns the bin.
func (h *HashBinRepo) AddOne(ctx context.Context, upstream string, i int) (string, error) {
	t := targetAt(upstream, i, map[string]any{"mediaType": ocispec.MediaTypeImageManifest})
	added, err := h.Repo.AddTargets("", []publish.NewTarget{t})
	if err != nil {
		return "", fmt.Errorf("benchgen: add %s: %w", t.Name, err)
	}
	if _, err := h.Repo.Publish(ctx); err != nil {
		return "", fmt.Errorf("benchgen: publish %s: %w", t.Name, err)
	}
	return added[0].Role, nil
}
