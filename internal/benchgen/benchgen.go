// Package benchgen generates the synthetic trust data that the Go
// benchmarks (policy, trustfetch) and the trustproxy-bench harness measure
// against, so that both speak of the same index: target i is
// <upstream>/fill/r<i/100>:t<i%100> and vouches for Manifest(i).
package benchgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

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
		body := Manifest(i)
		sum := sha256.Sum256(body)
		ts[i] = publish.NewTarget{Name: Name(upstream, i), Length: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), Custom: custom}
	}
	return ts
}
