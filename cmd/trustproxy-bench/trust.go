//go:build bench

package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

// largeTrust builds (once per run) the repository of TrustTargets targets
// the decision and start-up scenarios share.
func (e *benchEnv) largeTrust(ctx context.Context) (*trustRepo, error) {
	if e.large != nil {
		return e.large, nil
	}
	dir, err := e.nextDir("trust-large")
	if err != nil {
		return nil, err
	}
	tr, err := newTrustRepo(ctx, dir)
	if err != nil {
		return nil, err
	}
	if _, err := tr.signImage(ctx, e.upstream.host, e.small.repoTag); err != nil {
		return nil, err
	}
	if err := tr.addFiller(ctx, e.s.TrustTargets); err != nil {
		return nil, fmt.Errorf("publish %d targets: %w", e.s.TrustTargets, err)
	}
	e.large = tr
	return tr, nil
}

// decisions measures verified decisions per second, refresh times and
// memory with a TrustTargets-target repository, in-process.
func (e *benchEnv) decisions(ctx context.Context, rep *Report) error {
	tr, err := e.largeTrust(ctx)
	if err != nil {
		return err
	}
	dir, err := e.nextDir("decisions")
	if err != nil {
		return err
	}
	res, err := measureDecisions(ctx, tr, dir, e.s.DecideFor)
	if err != nil {
		return err
	}
	rep.Decisions = res
	rep.target(fmt.Sprintf("verified decisions/s, %d targets, one core", res.Targets), "≥ 20000", res.DecisionsPerSecond, "/s", res.DecisionsPerSecond >= 20000)
	return nil
}

// startupLargeTrust starts trustproxy on the large repository: time until
// /readyz says the trust data is verified, RSS then, and the peak.
func (e *benchEnv) startupLargeTrust(ctx context.Context, rep *Report) error {
	tr, err := e.largeTrust(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	tp, err := e.startTrustproxy(ctx, tr)
	if err != nil {
		return err
	}
	defer e.discard(tp)
	ready := time.Since(start).Seconds()
	if err := e.manifestRequest(ctx, tp.url, e.small.repo, "v1", "GET", e.small.dgst()); err != nil {
		return err
	}
	hwm, _ := tp.procStatus("VmHWM")
	rss, _ := tp.procStatus("VmRSS")
	title := fmt.Sprintf("trustproxy with %d targets", tr.filler)
	rep.add(single(scStartupBig, title+": start to ready", "s", "lower", map[string]float64{colTP: ready}))
	rep.add(single(scStartupBig, title+": RSS after start", "MiB", "lower", map[string]float64{colTP: float64(rss) / mib}))
	rep.add(single(scStartupBig, title+": peak RSS during start", "MiB", "lower", map[string]float64{colTP: float64(hwm) / mib}))
	return nil
}

// explain adds notes on what bounds the numbers, from this run's own
// measurements.
func (e *benchEnv) explain(rep *Report) {
	var shaMiB, rawMiB float64 = math.NaN(), math.NaN()
	for _, c := range rep.Ceilings {
		for _, v := range c.Values {
			if c.Metric == "sha256, one core" {
				shaMiB = v
			} else {
				rawMiB = v
			}
		}
	}
	if r := rep.row(scCachedBlob, fmt.Sprintf("%d MiB blob, cached", e.s.BlobMiB)); r != nil && !math.IsNaN(rawMiB) {
		rep.note("cached blob: a plain Go file server sends the same file at %.0f MiB/s here (trustproxy %.0f, upstream %.0f): the loopback path on %d cores shared by client and server is the bound",
			rawMiB, r.Values[colTP], r.Values[colUpstream], rep.Machine.CPUs)
	}
	if r := rep.row(scColdBlob, fmt.Sprintf("%d MiB blob, cold: throughput", e.s.BlobMiB)); r != nil && !math.IsNaN(shaMiB) {
		rep.note("cold blob: trustproxy hashes every byte once while spooling (sha256 here: %.0f MiB/s on one core); trustproxy cold %.0f MiB/s, distribution proxy %.0f MiB/s",
			shaMiB, r.Values[colTP], r.Values[colDist])
	}
	if rep.Machine.LoadStart > float64(rep.Machine.CPUs) {
		rep.note("the machine was busy (1-minute load %.1f on %d CPUs at the start): absolute numbers are low and noisy; the ratios are what to read",
			rep.Machine.LoadStart, rep.Machine.CPUs)
	}
}
