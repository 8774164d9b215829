//go:build bench

package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustproxy/trustproxy/internal/testenv"
)

// startS3 starts versitygw (posix backend) in the run's work directory: the
// S3 server both proxies use in the S3 scenarios.
func (e *benchEnv) startS3() (*testenv.VersityGW, error) {
	bin, err := testenv.VersityGWBinary()
	if err != nil {
		return nil, err
	}
	dir, err := e.nextDir("versitygw")
	if err != nil {
		return nil, err
	}
	return testenv.StartVersityGW(bin, dir)
}

// startOn starts the proxy of column col (trustproxy enforcing e.trust, or
// distribution's proxy) on the storage entry.
func (e *benchEnv) startOn(ctx context.Context, col, storage string) (*server, error) {
	if col == colTP {
		return e.startTrustproxyOn(ctx, e.trust, storage)
	}
	return e.startDistProxyOn(ctx, storage)
}

var s3Buckets atomic.Int64

// s3Storage makes a fresh bucket and returns the s3 storage entry for it,
// the same for trustproxy and distribution.
func s3Storage(ctx context.Context, gw *testenv.VersityGW, prefix string) (string, error) {
	bucket := fmt.Sprintf("%s-%d", prefix, s3Buckets.Add(1))
	if err := gw.CreateBucket(ctx, bucket); err != nil {
		return "", err
	}
	return fmt.Sprintf("s3: {accesskey: %s, secretkey: %s, region: us-east-1, regionendpoint: %q, forcepathstyle: true, bucket: %s, secure: false, rootdirectory: /r}",
		gw.AccessKey, gw.SecretKey, gw.Endpoint, bucket), nil
}

// s3Blob: both proxies on the same S3 server, each in its own bucket. The
// cached rows interleave runs; the cold rows start each proxy on a fresh
// bucket per run.
func (e *benchEnv) s3Blob(ctx context.Context, rep *Report) error {
	gw, err := e.startS3()
	if err != nil {
		return err
	}
	defer gw.Close()
	big := e.big
	layer, size := big.layers[0].String(), big.sizes[0]

	tpStore, err := s3Storage(ctx, gw, "tp")
	if err != nil {
		return err
	}
	dpStore, err := s3Storage(ctx, gw, "dist")
	if err != nil {
		return err
	}
	tp, err := e.startTrustproxyOn(ctx, e.trust, tpStore)
	if err != nil {
		return err
	}
	defer e.discard(tp)
	dp, err := e.startDistProxyOn(ctx, dpStore)
	if err != nil {
		return err
	}
	defer e.discard(dp)
	if err := e.manifestRequest(ctx, tp.url, big.repo, "v1", "GET", big.dgst()); err != nil {
		return err
	}
	for _, s := range []*server{tp, dp, tp, dp} {
		if _, err := e.getBlob(ctx, s.url, big.repo, layer, size, true); err != nil {
			return err
		}
		s.waitIdle(10 * time.Second) // the commit to S3 is done
	}
	cached := map[string][]float64{}
	for range e.s.Runs {
		for col, s := range map[string]*server{colTP: tp, colDist: dp} {
			d, err := e.getBlob(ctx, s.url, big.repo, layer, size, false)
			if err != nil {
				return err
			}
			cached[col] = append(cached[col], float64(size)/mib/d.Seconds())
		}
	}
	rep.add(sampled(scS3, fmt.Sprintf("%d MiB blob on S3, cached", e.s.BlobMiB), "MiB/s", "higher", cached))
	r := pairedRatio(cached[colTP], cached[colDist])
	rep.target("S3 cached blob: trustproxy / distribution proxy (median of per-run ratios)", "≥ 0.9", r, "×", r >= 0.9)

	cold := map[string][]float64{}
	for range e.s.ColdRuns {
		for _, col := range []string{colTP, colDist} {
			store, err := s3Storage(ctx, gw, "cold")
			if err != nil {
				return err
			}
			s, err := e.startOn(ctx, col, store)
			if err == nil && col == colTP {
				err = e.manifestRequest(ctx, s.url, big.repo, "v1", "GET", big.dgst())
			}
			if err != nil {
				e.discard(s)
				return err
			}
			d, err := e.getBlob(ctx, s.url, big.repo, layer, size, false)
			s.waitIdle(10 * time.Second)
			e.discard(s)
			if err != nil {
				return fmt.Errorf("%s: %w", col, err)
			}
			cold[col] = append(cold[col], d.Seconds())
		}
	}
	rep.add(sampled(scS3, fmt.Sprintf("%d MiB blob on S3, cold: time", e.s.BlobMiB), "s", "lower", cold))
	speedup := pairedRatio(cold[colDist], cold[colTP])
	rep.target("S3 cold blob: distribution proxy time / trustproxy time (median of per-run ratios)", "≥ 1", speedup, "×", speedup >= 1)
	return nil
}

// replicas: three processes of each proxy share one bucket; ConcurrentPulls
// clients, spread over the three, ask for the same cold blob at once.
// Upstream GETs come from the upstream's access log; peak RSS is each
// process's VmHWM, reset just before the clients start.
func (e *benchEnv) replicas(ctx context.Context, rep *Report) error {
	gw, err := e.startS3()
	if err != nil {
		return err
	}
	defer gw.Close()
	big := e.big
	layer, size := big.layers[0].String(), big.sizes[0]
	path := "/v2/" + big.repo + "/blobs/" + layer
	n := e.s.ConcurrentPulls
	gets, tput, peakMax := map[string]float64{}, map[string]float64{}, map[string]float64{}
	peaks := map[string][]float64{}
	for _, col := range []string{colTP, colDist} {
		store, err := s3Storage(ctx, gw, "replicas")
		if err != nil {
			return err
		}
		var group []*server
		stop := func() {
			for _, s := range group {
				e.discard(s)
			}
		}
		for range 3 {
			s, err := e.startOn(ctx, col, store)
			if err != nil {
				stop()
				return err
			}
			group = append(group, s)
		}
		if col == colTP { // approved once, on one replica: the bucket tells the others
			if err := e.manifestRequest(ctx, group[0].url, big.repo, "v1", "GET", big.dgst()); err != nil {
				stop()
				return err
			}
		}
		before, err := countUpstreamGETs(e.upstream.log, path)
		if err != nil {
			stop()
			return err
		}
		for _, s := range group {
			_ = s.resetPeakRSS()
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		gate := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				_, errs[i] = e.getBlob(ctx, group[i%3].url, big.repo, layer, size, i < 3)
			}()
		}
		start := time.Now()
		close(gate)
		wg.Wait()
		el := time.Since(start)
		for _, s := range group {
			if hwm, err := s.procStatus("VmHWM"); err == nil {
				peaks[col] = append(peaks[col], float64(hwm)/mib)
			}
			s.waitIdle(10 * time.Second)
		}
		stop()
		for _, err := range errs {
			if err != nil {
				return fmt.Errorf("%s: %w", col, err)
			}
		}
		time.Sleep(300 * time.Millisecond) // let the upstream finish its log lines
		after, err := countUpstreamGETs(e.upstream.log, path)
		if err != nil {
			return err
		}
		gets[col] = float64(after - before)
		tput[col] = float64(n) * float64(size) / mib / el.Seconds()
		peakMax[col] = 0
		for _, p := range peaks[col] {
			peakMax[col] = math.Max(peakMax[col], p)
		}
	}
	title := fmt.Sprintf("3 replicas on one bucket, %d clients × %d MiB cold blob", n, e.s.BlobMiB)
	rep.add(single(scReplicas, title+": upstream GETs", "count", "lower", gets))
	rep.add(single(scReplicas, title+": aggregate throughput", "MiB/s", "higher", tput))
	rep.add(single(scReplicas, title+": highest peak RSS of a replica", "MiB", "lower", peakMax))
	for i := range 3 {
		v := map[string]float64{}
		for col, p := range peaks {
			if i < len(p) {
				v[col] = p[i]
			}
		}
		rep.add(single(scReplicas, fmt.Sprintf("peak RSS of replica %d", i+1), "MiB", "lower", v))
	}
	g, ok := gets[colTP]
	if !ok {
		g = math.NaN()
	}
	rep.target(fmt.Sprintf("3 replicas, %d concurrent cold pulls: trustproxy upstream GETs", n), "= 1", g, "GETs", g == 1)
	return nil
}
