//go:build bench

package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// references measures the ceilings in this run: one core's sha256 (what
// the cold path must do per byte) and a plain Go file server serving the
// upstream's own copy of the blob over loopback.
func (e *benchEnv) references(ctx context.Context, rep *Report) error {
	buf := make([]byte, 64*mib)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	prev := runtime.GOMAXPROCS(1)
	var hs []float64
	for range max(3, e.s.Runs) {
		start := time.Now()
		h := sha256.New()
		for range 4 {
			h.Write(buf)
		}
		h.Sum(nil)
		hs = append(hs, 256/time.Since(start).Seconds())
	}
	runtime.GOMAXPROCS(prev)
	rep.Ceilings = append(rep.Ceilings, sampled(scReferencing, "sha256, one core", "MiB/s", "higher", map[string][]float64{"in-process": hs}))

	url, stop, err := rawFileServer(e.upstreamBlobFile(e.big.layers[0].String()))
	if err != nil {
		return err
	}
	defer stop()
	size := e.big.sizes[0]
	if _, err := e.getBlob(ctx, url, "raw", e.big.layers[0].String(), size, true); err != nil {
		return fmt.Errorf("raw file server: %w", err)
	}
	var raw []float64
	for range e.s.Runs {
		d, err := e.getBlob(ctx, url, "raw", e.big.layers[0].String(), size, false)
		if err != nil {
			return err
		}
		raw = append(raw, float64(size)/mib/d.Seconds())
	}
	rep.Ceilings = append(rep.Ceilings, sampled(scReferencing, fmt.Sprintf("%d MiB over loopback, Go file server", e.s.BlobMiB), "MiB/s", "higher",
		map[string][]float64{"io.Copy(w, *os.File)": raw}))
	return nil
}

// cachedBlob: the blob is in both proxies' caches; each run GETs it from
// the upstream, trustproxy and distribution's proxy, interleaved so that
// load changes on the shared machine hit all three alike.
func (e *benchEnv) cachedBlob(ctx context.Context, rep *Report) error {
	tp, dp, stop, err := e.startBothProxies(ctx)
	if err != nil {
		return err
	}
	defer stop()
	big := e.big
	layer, size := big.layers[0].String(), big.sizes[0]
	if err := e.manifestRequest(ctx, tp.url, big.repo, "v1", "GET", big.dgst()); err != nil {
		return err
	}
	// Fill both caches, checking the bytes once.
	for _, s := range []*server{tp, dp, tp, dp} {
		if _, err := e.getBlob(ctx, s.url, big.repo, layer, size, true); err != nil {
			return err
		}
	}
	samples := map[string][]float64{}
	cpu := map[string]float64{}
	servers := map[string]*server{colUpstream: e.upstream, colTP: tp, colDist: dp}
	for _, col := range []string{colUpstream, colTP, colDist} {
		c, _ := servers[col].cpuSeconds()
		cpu[col] = -c
	}
	err = e.profile(tp, "cached-blob", func() error {
		for range e.s.Runs {
			for _, col := range []string{colUpstream, colTP, colDist} {
				d, err := e.getBlob(ctx, servers[col].url, big.repo, layer, size, false)
				if err != nil {
					return err
				}
				samples[col] = append(samples[col], float64(size)/mib/d.Seconds())
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	gib := float64(size) * float64(e.s.Runs) / (1 << 30)
	for col, s := range servers {
		c, _ := s.cpuSeconds()
		cpu[col] = (cpu[col] + c) / gib
	}
	r := sampled(scCachedBlob, fmt.Sprintf("%d MiB blob, cached", e.s.BlobMiB), "MiB/s", "higher", samples)
	rep.add(r)
	rep.add(single(scCachedBlob, "server CPU per GiB served", "s/GiB", "lower", cpu))
	// Runs are interleaved, so the median of per-run ratios is the
	// estimate least moved by load drifting during the scenario.
	ratio := pairedRatio(samples[colTP], samples[colUpstream])
	rep.target("cached blob: trustproxy / upstream direct (median of per-run ratios)", "≥ 0.95", ratio, "×", ratio >= 0.95)
	return nil
}

// coldBlob: a fresh cache for every run of each proxy (a new process on an
// empty storage directory); trustproxy first gets the signed manifest,
// untimed, since it serves blobs only under an approved manifest.
func (e *benchEnv) coldBlob(ctx context.Context, rep *Report) error {
	big := e.big
	layer, size := big.layers[0].String(), big.sizes[0]
	secs := map[string][]float64{}
	rss := map[string][]float64{}
	cpu, cpuAll := map[string][]float64{}, map[string][]float64{}
	for run := range e.s.ColdRuns {
		d, err := e.getBlob(ctx, e.upstream.url, big.repo, layer, size, false)
		if err != nil {
			return err
		}
		secs[colUpstream] = append(secs[colUpstream], d.Seconds())

		tp, err := e.startTrustproxy(ctx, e.trust)
		if err != nil {
			return err
		}
		err = e.manifestRequest(ctx, tp.url, big.repo, "v1", "GET", big.dgst())
		if err == nil {
			err = e.profile(tp, fmt.Sprintf("cold-blob-%d", run), func() error {
				d, err = e.coldGet(tp, big.repo, layer, size, run == 0, cpu, cpuAll, colTP)
				return err
			})
		}
		if err == nil {
			secs[colTP] = append(secs[colTP], d.Seconds())
			if hwm, herr := tp.procStatus("VmHWM"); herr == nil {
				rss[colTP] = append(rss[colTP], float64(hwm)/mib)
			}
		}
		e.discard(tp)
		if err != nil {
			return fmt.Errorf("trustproxy: %w", err)
		}

		dp, err := e.startDistProxy(ctx)
		if err != nil {
			return err
		}
		d, err = e.coldGet(dp, big.repo, layer, size, run == 0, cpu, cpuAll, colDist)
		if err == nil {
			secs[colDist] = append(secs[colDist], d.Seconds())
			if hwm, herr := dp.procStatus("VmHWM"); herr == nil {
				rss[colDist] = append(rss[colDist], float64(hwm)/mib)
			}
		}
		e.discard(dp)
		if err != nil {
			return fmt.Errorf("distribution proxy: %w", err)
		}
	}
	r := sampled(scColdBlob, fmt.Sprintf("%d MiB blob, cold: time", e.s.BlobMiB), "s", "lower", secs)
	rep.add(r)
	tput := map[string][]float64{}
	for k, v := range secs {
		for _, s := range v {
			tput[k] = append(tput[k], float64(size)/mib/s)
		}
	}
	rep.add(sampled(scColdBlob, fmt.Sprintf("%d MiB blob, cold: throughput", e.s.BlobMiB), "MiB/s", "higher", tput))
	rep.add(sampled(scColdBlob, "proxy CPU until the client has the blob", "s", "lower", cpu))
	rep.add(sampled(scColdBlob, "proxy CPU including its cache commit", "s", "lower", cpuAll))
	rep.add(sampled(scColdBlob, "peak RSS of the proxy process", "MiB", "lower", rss))
	speedup := pairedRatio(secs[colDist], secs[colTP])
	rep.target("cold blob: distribution proxy time / trustproxy time (median of per-run ratios)", "≥ 1.5", speedup, "×", speedup >= 1.5)
	// Issue 16: near the upstream's own speed, every byte still verified.
	slow := pairedRatio(secs[colTP], secs[colUpstream])
	rep.target("cold blob: trustproxy time / upstream direct time (median of per-run ratios)", "≤ 1.5", slow, "×", slow <= 1.5)
	return nil
}

// pairedRatio is the median of a[i]/b[i] over runs measured side by side.
func pairedRatio(a, b []float64) float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return median(r)
}

// coldGet GETs a cold blob from s and records s's CPU time: until the
// client has the last byte, and until s has gone idle again (its cache
// commit done).
func (e *benchEnv) coldGet(s *server, repo, layer string, size int64, verify bool, cpu, cpuAll map[string][]float64, col string) (time.Duration, error) {
	c0, cerr := s.cpuSeconds()
	d, err := e.getBlob(context.Background(), s.url, repo, layer, size, verify)
	if err != nil || cerr != nil {
		return d, err
	}
	c1, _ := s.cpuSeconds()
	c2 := s.waitIdle(5 * time.Second)
	cpu[col] = append(cpu[col], c1-c0)
	cpuAll[col] = append(cpuAll[col], c2-c0)
	return d, nil
}

// concurrentCold: N clients ask a fresh proxy for the same cold blob at
// once. Upstream GETs are counted in the upstream's access log; peak RSS is
// VmHWM after resetting it just before the clients start.
func (e *benchEnv) concurrentCold(ctx context.Context, rep *Report) error {
	big := e.big
	layer, size := big.layers[0].String(), big.sizes[0]
	path := "/v2/" + big.repo + "/blobs/" + layer
	n := e.s.ConcurrentPulls
	gets, tput, wall, peak, base, clientMed := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	cpuUsed := map[string]float64{}
	for _, col := range []string{colTP, colDist} {
		var s *server
		var err error
		if col == colTP {
			s, err = e.startTrustproxy(ctx, e.trust)
			if err == nil {
				err = e.manifestRequest(ctx, s.url, big.repo, "v1", "GET", big.dgst())
			}
		} else {
			s, err = e.startDistProxy(ctx)
		}
		if err != nil {
			e.discard(s)
			return err
		}
		before, err := countUpstreamGETs(e.upstream.log, path)
		if err != nil {
			e.discard(s)
			return err
		}
		if rss, err := s.procStatus("VmRSS"); err == nil {
			base[col] = float64(rss) / mib
		}
		resetErr := s.resetPeakRSS()
		c0, _ := s.cpuSeconds()
		var wg sync.WaitGroup
		durs := make([]float64, n)
		errs := make([]error, n)
		startGate := make(chan struct{})
		var start time.Time
		err = e.profile(s, "concurrent-cold", func() error {
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-startGate
					// One client checks the bytes; hashing in all of them
					// would make the clients the bottleneck.
					d, err := e.getBlob(ctx, s.url, big.repo, layer, size, i == 0)
					durs[i], errs[i] = d.Seconds(), err
				}()
			}
			start = time.Now()
			close(startGate)
			wg.Wait()
			return nil
		})
		el := time.Since(start)
		cpuUsed[col] = s.waitIdle(5*time.Second) - c0
		hwm, hwmErr := s.procStatus("VmHWM")
		e.discard(s)
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("%s: %w", col, err)
			}
		}
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // let the upstream finish its log lines
		after, err := countUpstreamGETs(e.upstream.log, path)
		if err != nil {
			return err
		}
		gets[col] = float64(after - before)
		wall[col] = el.Seconds()
		tput[col] = float64(n) * float64(size) / mib / el.Seconds()
		clientMed[col] = median(durs)
		if hwmErr == nil {
			peak[col] = float64(hwm) / mib
			if resetErr != nil {
				rep.note("%s: could not reset VmHWM (%v): its peak RSS includes start-up", col, resetErr)
			}
		}
	}
	title := fmt.Sprintf("%d clients × %d MiB cold blob", n, e.s.BlobMiB)
	rep.add(single(scConcurrent, title+": upstream GETs", "count", "lower", gets))
	rep.add(single(scConcurrent, title+": wall time", "s", "lower", wall))
	rep.add(single(scConcurrent, title+": aggregate throughput", "MiB/s", "higher", tput))
	rep.add(single(scConcurrent, title+": median client time", "s", "lower", clientMed))
	rep.add(single(scConcurrent, title+": proxy CPU", "s", "lower", cpuUsed))
	rep.add(single(scConcurrent, "proxy RSS before the pulls", "MiB", "lower", base))
	rep.add(single(scConcurrent, "proxy peak RSS during the pulls", "MiB", "lower", peak))
	g, ok := gets[colTP]
	if !ok {
		g = math.NaN()
	}
	rep.target(fmt.Sprintf("%d concurrent cold pulls: trustproxy upstream GETs", n), "= 1", g, "GETs", g == 1)
	p, ok := peak[colTP]
	if !ok {
		p = math.NaN()
	}
	rep.target(fmt.Sprintf("%d concurrent cold pulls: trustproxy peak RSS", n), "< 150", p, "MiB", p < 150)
	return nil
}
