//go:build bench

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/policy"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// decisionResult is the trust-data side of the suite, measured in-process
// with the real packages: trustfetch reading the repository from its
// directory, policy deciding.
type decisionResult struct {
	Targets int `json:"targets"`
	// TargetsJSONBytes is the size of the signed targets.json.
	TargetsJSONBytes int64 `json:"targets_json_bytes"`
	// BuildSeconds: staging and signing the filler with publish.
	BuildSeconds float64 `json:"publish_seconds"`
	// InitialRefreshSeconds: trustfetch.Open on an empty state directory
	// (read, verify every signature, build the index).
	InitialRefreshSeconds float64 `json:"initial_refresh_seconds"`
	// ChangedRefreshSeconds: Refresh after one target was added and a new
	// targets version published.
	ChangedRefreshSeconds float64 `json:"changed_refresh_seconds"`
	// UnchangedRefreshSeconds: Refresh when nothing was published.
	UnchangedRefreshSeconds float64 `json:"unchanged_refresh_seconds"`
	// AddOneTargetSeconds: publish.AddTarget + Publish of one target into
	// the large repository (the publisher's side).
	AddOneTargetSeconds float64 `json:"add_one_target_seconds"`
	// IndexHeapMiB: live heap held after Open (the index and its metadata).
	IndexHeapMiB float64 `json:"index_heap_mib"`
	// RefreshPeakHeapMiB: highest live heap sampled during the initial refresh.
	RefreshPeakHeapMiB float64 `json:"refresh_peak_heap_mib"`
	// DecisionsPerSecond: ResolveTag + CheckManifest (verify the manifest
	// bytes against the target) with the audit line written to a file, one
	// goroutine, GOMAXPROCS=1.
	DecisionsPerSecond float64 `json:"decisions_per_second"`
	// AllocsPerDecision and BytesPerDecision from runtime.MemStats.
	AllocsPerDecision float64 `json:"allocs_per_decision"`
	BytesPerDecision  float64 `json:"bytes_per_decision"`
	// LookupsPerSecond: Index.Lookup alone (the O(1) part).
	LookupsPerSecond float64 `json:"lookups_per_second"`
}

// measureDecisions opens the repository as trustproxy would (from a local
// directory), then measures decisions, refreshes and memory.
func measureDecisions(ctx context.Context, tr *trustRepo, workDir string, decideFor time.Duration) (*decisionResult, error) {
	res := &decisionResult{Targets: tr.filler, TargetsJSONBytes: tr.targetsFileBytes(), BuildSeconds: tr.buildSeconds}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := sampleHeap()
	start := time.Now()
	repo, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: "corp", Metadata: tr.metadataDir(), Root: tr.rootPath(),
		StateDir: filepath.Join(workDir, "decisions-state"), Refresh: time.Hour,
		MaxMetadataBytes: maxMetadataBytes,
	}, trustfetch.Options{})
	if err != nil {
		peak()
		return nil, fmt.Errorf("open trust repository: %w", err)
	}
	res.InitialRefreshSeconds = time.Since(start).Seconds()
	res.RefreshPeakHeapMiB = max(0, float64(int64(peak())-int64(before.HeapAlloc))/(1<<20))
	ix, err := repo.Index()
	if err != nil {
		return nil, fmt.Errorf("trust index after open: %w", err)
	}
	if ix.Len() < tr.filler {
		return nil, fmt.Errorf("trust index has %d targets, want at least %d", ix.Len(), tr.filler)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// A difference of two samples: for a small repository it is within the
	// noise of the rest of the process, so it is clamped at zero.
	res.IndexHeapMiB = max(0, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20))

	if err := measureDecisionRate(ctx, repo, ix, tr.filler, workDir, decideFor, res); err != nil {
		return nil, err
	}

	// Refreshes: unchanged, then after the publisher added one target.
	start = time.Now()
	if err := repo.Refresh(ctx); err != nil {
		return nil, err
	}
	res.UnchangedRefreshSeconds = time.Since(start).Seconds()
	start = time.Now()
	if _, err := tr.repo.AddTarget("targets", upstreamName+"/fill/extra:v1", 1234, fmt.Sprintf("%064x", 42), map[string]any{"mediaType": ociManifestType}); err != nil {
		return nil, fmt.Errorf("add one target: %w", err)
	}
	if err := tr.publish(ctx); err != nil {
		return nil, fmt.Errorf("publish one target: %w", err)
	}
	res.AddOneTargetSeconds = time.Since(start).Seconds()
	start = time.Now()
	if err := repo.Refresh(ctx); err != nil {
		return nil, err
	}
	res.ChangedRefreshSeconds = time.Since(start).Seconds()
	if ix2, err := repo.Index(); err != nil || ix2.Len() != ix.Len()+1 {
		return nil, fmt.Errorf("refresh after adding a target: index %v, %v", ix2, err)
	}
	return res, nil
}

// measureDecisionRate measures verified decisions (ResolveTag +
// CheckManifest with the audit line written to a file) and index lookups
// per second on one core, for targets benchgen.Name(upstreamName, 0..filler-1).
func measureDecisionRate(ctx context.Context, repo *trustfetch.Repository, ix *trustfetch.Index, filler int, workDir string, decideFor time.Duration, res *decisionResult) error {
	// Decisions. The audit logger is trustproxy's production encoder
	// writing one line per decision to a file, as serve does to stderr.
	logFile, err := os.Create(filepath.Join(workDir, "decisions-audit.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(logFile), zapcore.InfoLevel))
	engine, err := policy.New(policy.Config{Rules: []policy.Rule{
		{Name: "bench", Match: upstreamName + "/**", Mode: policy.ModeEnforce, Trust: "corp"},
	}}, map[string]policy.TrustSource{"corp": repo}, policy.Options{Logger: logger})
	if err != nil {
		return err
	}
	const sample = 4096
	type req struct {
		subj policy.Subject
		body []byte
		dg   digest.Digest
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]req, sample)
	for i := range reqs {
		n := rng.IntN(filler)
		repoName, tag := benchgen.RepoTag(n)
		body := benchgen.Manifest(n)
		reqs[i] = req{policy.Subject{Upstream: upstreamName, Repository: repoName, Tag: tag, Client: "127.0.0.1"}, body, digest.FromBytes(body)}
	}
	decide := func(r *req) error {
		d := engine.ResolveTag(ctx, r.subj)
		if !d.Allowed || d.Digest != r.dg {
			return fmt.Errorf("resolve %s: %+v", r.subj.Reference(), d)
		}
		d = engine.CheckManifest(ctx, r.subj, r.dg, ociManifestType, r.body)
		if !d.Allowed || d.Reason != "" {
			return fmt.Errorf("check %s: %+v", r.subj.Reference(), d)
		}
		return nil
	}
	// Every sampled decision must be right before any is timed.
	for i := range reqs {
		if err := decide(&reqs[i]); err != nil {
			return fmt.Errorf("decision: %w", err)
		}
	}
	prev := runtime.GOMAXPROCS(1)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	n := 0
	start := time.Now()
	deadline := start.Add(decideFor)
	for time.Now().Before(deadline) {
		for j := 0; j < 256; j++ {
			if err := decide(&reqs[(n+j)%sample]); err != nil {
				runtime.GOMAXPROCS(prev)
				return err
			}
		}
		n += 256
	}
	el := time.Since(start)
	runtime.ReadMemStats(&ms1)
	res.DecisionsPerSecond = float64(n) / el.Seconds()
	res.AllocsPerDecision = float64(ms1.Mallocs-ms0.Mallocs) / float64(n)
	res.BytesPerDecision = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(n)

	names := make([]string, sample)
	for i := range names {
		names[i] = benchgen.Name(upstreamName, rng.IntN(filler))
	}
	n = 0
	start = time.Now()
	deadline = start.Add(decideFor / 4)
	for time.Now().Before(deadline) {
		for j := 0; j < 4096; j++ {
			if _, ok := ix.Lookup(names[(n+j)%sample]); !ok {
				runtime.GOMAXPROCS(prev)
				return fmt.Errorf("lookup %s: missing", names[(n+j)%sample])
			}
		}
		n += 4096
	}
	res.LookupsPerSecond = float64(n) / time.Since(start).Seconds()
	runtime.GOMAXPROCS(prev)

	return nil
}

// sampleHeap samples the live heap every 10 ms until the returned function
// is called, which returns the highest value seen.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	read := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapAlloc)
		mu.Unlock()
	}
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		read()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
