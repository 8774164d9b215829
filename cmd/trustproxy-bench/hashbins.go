//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/trustproxy/trustproxy/internal/benchgen"
	"github.com/trustproxy/trustproxy/trustfetch"
)

// hashBinsResult is the 1,000,000-target hash-bin scenario (issue 16).
type hashBinsResult struct {
	Targets   int     `json:"targets"`
	RepoMiB   float64 `json:"repo_mib"` // every metadata file of the repository
	PublishS  float64 `json:"publish_seconds"`
	ColdS     float64 `json:"cold_ready_seconds"`
	ColdRSS   float64 `json:"cold_rss_mib"`
	ColdPeak  float64 `json:"cold_peak_rss_mib"`
	ColdMiB   float64 `json:"cold_fetched_mib"`
	WarmS     float64 `json:"warm_ready_seconds"`
	WarmRSS   float64 `json:"warm_rss_mib"`
	WarmPeak  float64 `json:"warm_peak_rss_mib"`
	RefreshS  float64 `json:"changed_refresh_seconds"`
	RefreshKB float64 `json:"changed_refresh_fetched_kib"`
	// RefreshPeakHeapMiB is the highest live heap during the refresh
	// above the heap before it (after a GC).
	RefreshPeakHeapMiB float64         `json:"changed_refresh_peak_extra_heap_mib"`
	Decisions          *decisionResult `json:"decisions"`
}

// hashBins publishes HashBinTargets targets into succinct hash bins with
// trustproxy's publisher, serves them over HTTP (bytes counted), and
// measures trustproxy's start on them from an empty and from a warm state
// directory, then, in-process, a refresh after one target was added and
// verified decisions.
func (e *benchEnv) hashBins(ctx context.Context, rep *Report) error {
	dir, err := e.nextDir("hashbins")
	if err != nil {
		return err
	}
	res := &hashBinsResult{Targets: e.s.HashBinTargets}
	start := time.Now()
	gen, err := benchgen.PublishHashBins(ctx, filepath.Join(dir, "repo"), filepath.Join(dir, "keys"), upstreamName, res.Targets, 0)
	if err != nil {
		return err
	}
	res.PublishS = time.Since(start).Seconds()
	rootPath := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootPath, gen.Root, 0o644); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(gen.Dir, "metadata"))
	if err != nil {
		return err
	}
	for _, en := range entries {
		if fi, err := en.Info(); err == nil {
			res.RepoMiB += float64(fi.Size()) / mib
		}
	}
	var sent atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	files := http.FileServer(http.Dir(gen.Dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files.ServeHTTP(countingWriter{w, &sent}, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	metaURL := "http://" + ln.Addr().String() + "/metadata"

	// trustproxy, from an empty state directory, then restarted on it.
	state := filepath.Join(dir, "state")
	for _, warm := range []bool{false, true} {
		before := sent.Load()
		start := time.Now()
		tp, err := e.startTrustproxyWith(ctx, trustLocation{metadata: metaURL, root: rootPath, state: state}, "")
		if err != nil {
			return err
		}
		ready := time.Since(start).Seconds()
		rss, _ := tp.procStatus("VmRSS")
		hwm, _ := tp.procStatus("VmHWM")
		e.discard(tp)
		if warm {
			res.WarmS, res.WarmRSS, res.WarmPeak = ready, float64(rss)/mib, float64(hwm)/mib
		} else {
			res.ColdS, res.ColdRSS, res.ColdPeak = ready, float64(rss)/mib, float64(hwm)/mib
			res.ColdMiB = float64(sent.Load()-before) / mib
		}
	}

	// In-process: one target added, one refresh; then decisions.
	repo, err := trustfetch.Open(ctx, trustfetch.Config{
		Name: "corp", Metadata: metaURL, Root: rootPath, StateDir: filepath.Join(dir, "inprocess-state"),
		Refresh: time.Hour, MaxMetadataBytes: maxMetadataBytes,
	}, trustfetch.Options{})
	if err != nil {
		return err
	}
	defer repo.Close()
	ix, err := repo.Index()
	if err != nil {
		return err
	}
	if ix.Len() != res.Targets {
		return fmt.Errorf("index has %d targets, want %d", ix.Len(), res.Targets)
	}
	if _, err := gen.AddOne(ctx, upstreamName, res.Targets); err != nil {
		return err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak := sampleHeap()
	before := sent.Load()
	start = time.Now()
	err = repo.Refresh(ctx)
	res.RefreshS = time.Since(start).Seconds()
	res.RefreshKB = float64(sent.Load()-before) / 1024
	res.RefreshPeakHeapMiB = max(0, float64(int64(peak())-int64(ms.HeapAlloc))/mib)
	if err != nil {
		return err
	}
	if ix, err = repo.Index(); err != nil || ix.Len() != res.Targets+1 {
		return errors.Join(err, fmt.Errorf("after adding a target the index has %d targets", ix.Len()))
	}
	res.Decisions = &decisionResult{Targets: res.Targets}
	if err := measureDecisionRate(ctx, repo, ix, res.Targets, dir, e.s.DecideFor, res.Decisions); err != nil {
		return err
	}
	rep.HashBins = res

	title := fmt.Sprintf("%d targets in hash bins", res.Targets)
	rep.add(single(scHashBins, title+": start to ready, empty state", "s", "lower", map[string]float64{colTP: res.ColdS}))
	rep.add(single(scHashBins, title+": start to ready, warm state", "s", "lower", map[string]float64{colTP: res.WarmS}))
	rep.add(single(scHashBins, title+": peak RSS, empty state", "MiB", "lower", map[string]float64{colTP: res.ColdPeak}))
	rep.add(single(scHashBins, title+": refresh after one target added", "s", "lower", map[string]float64{colTP: res.RefreshS}))
	pct := 100 * res.RefreshKB / 1024 / res.RepoMiB
	rep.target(title+": ready from an empty state", "≤ 10 s", res.ColdS, "s", res.ColdS <= 10)
	rep.target(title+": ready from a warm state", "≤ 2 s", res.WarmS, "s", res.WarmS <= 2)
	rep.target(title+": peak RSS", "≤ 400 MiB", max(res.ColdPeak, res.WarmPeak), "MiB", max(res.ColdPeak, res.WarmPeak) <= 400)
	rep.target(title+": refresh after one change, time", "≤ 0.25 s", res.RefreshS, "s", res.RefreshS <= 0.25)
	rep.target(title+": refresh after one change, bytes fetched (% of the repository)", "≤ 2 %", pct, "%", pct <= 2)
	rep.target(title+": refresh after one change, extra peak heap", "≤ 50 MiB", res.RefreshPeakHeapMiB, "MiB", res.RefreshPeakHeapMiB <= 50)
	rep.target(title+": verified decisions/s, one core", "≥ 50000", res.Decisions.DecisionsPerSecond, "/s", res.Decisions.DecisionsPerSecond >= 50000)
	return nil
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}
