//go:build bench

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// upstreamName is the upstream's name in trustproxy's configuration: target
// names are "<upstreamName>/<repository>:<tag>".
const upstreamName = "up"

// maxMetadataBytes is trustproxy's maxMetadataBytes in the suite. A
// 100,000-target role is about 24 MB of JSON, above trustfetch's 16 MiB
// default: such repositories need this raised (or delegations).
const maxMetadataBytes = 128 << 20

// Settings are the sizes and repetitions of one run.
type Settings struct {
	Quick bool `json:"quick"`
	// BlobMiB is the size of the single-blob scenarios (cached, cold, concurrent).
	BlobMiB int `json:"blob_mib"`
	// ImageLayers × LayerMiB is the cold image.
	ImageLayers int `json:"image_layers"`
	LayerMiB    int `json:"layer_mib"`
	// PullParallelism is how many layers the image pull reads at once
	// (docker's default max-concurrent-downloads is 3).
	PullParallelism int `json:"pull_parallelism"`
	// Runs of the cached blob; ColdRuns of each cold scenario (fresh caches each).
	Runs     int `json:"runs"`
	ColdRuns int `json:"cold_runs"`
	// ManifestRequests sequential requests per kind; ManifestClients
	// concurrent clients doing ManifestPerClient requests each.
	ManifestRequests  int `json:"manifest_requests"`
	ManifestClients   int `json:"manifest_clients"`
	ManifestPerClient int `json:"manifest_per_client"`
	// ConcurrentPulls of one cold blob.
	ConcurrentPulls int `json:"concurrent_pulls"`
	// TrustTargets is the size of the trust repository for the decision
	// scenario (and the startup scenario); ProxyTargets the filler in the
	// repository the proxy instances of the data-path scenarios use.
	TrustTargets int `json:"trust_targets"`
	ProxyTargets int `json:"proxy_targets"`
	// HashBinTargets is the size of the hash-bin repository of the
	// hashbins scenario.
	HashBinTargets int `json:"hash_bin_targets"`
	// DecideFor is how long decisions are counted.
	DecideFor time.Duration `json:"decide_for_ns"`

	Registry   string          `json:"-"`
	ProfileDir string          `json:"-"`
	Overlay    string          `json:"overlay,omitempty"`
	Keep       bool            `json:"-"`
	Only       map[string]bool `json:"only,omitempty"`
}

func fullSettings() Settings {
	return Settings{
		BlobMiB: 256, ImageLayers: 8, LayerMiB: 64, PullParallelism: 3,
		Runs: 7, ColdRuns: 5,
		ManifestRequests: 500, ManifestClients: 32, ManifestPerClient: 50,
		ConcurrentPulls: 50,
		TrustTargets:    100_000, ProxyTargets: 1_000,
		HashBinTargets: 1_000_000,
		DecideFor:      3 * time.Second,
	}
}

func quickSettings() Settings {
	return Settings{
		Quick:   true,
		BlobMiB: 4, ImageLayers: 3, LayerMiB: 1, PullParallelism: 3,
		Runs: 2, ColdRuns: 1,
		ManifestRequests: 20, ManifestClients: 4, ManifestPerClient: 5,
		ConcurrentPulls: 5,
		TrustTargets:    500, ProxyTargets: 20,
		HashBinTargets: 2_000,
		DecideFor:      100 * time.Millisecond,
	}
}

// The scenarios, in the order they run.
const (
	scCachedBlob  = "cached-blob"
	scColdBlob    = "cold-blob"
	scColdImage   = "cold-image"
	scManifests   = "manifests"
	scConcurrent  = "concurrent-cold"
	scDecisions   = "decisions"
	scStartupBig  = "startup-large-trust"
	scHashBins    = "hashbins"   // 1,000,000 targets in succinct hash bins
	scReferencing = "references" // raw loopback and sha256 ceilings
	scS3          = "s3"         // both proxies on one S3 server (versitygw)
	scReplicas    = "replicas"   // three processes of each on one bucket
)

var allScenarios = []string{scReferencing, scCachedBlob, scColdBlob, scColdImage, scManifests, scConcurrent, scS3, scReplicas, scDecisions, scStartupBig, scHashBins}

func scenarioNames() string { return strings.Join(allScenarios, ",") }

func parseOnly(s string) (map[string]bool, error) {
	sel := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(allScenarios, n) {
			return nil, fmt.Errorf("-only: unknown scenario %q (scenarios: %s)", n, scenarioNames())
		}
		sel[n] = true
	}
	return sel, nil
}

func (s Settings) want(name string) bool { return len(s.Only) == 0 || s.Only[name] }
