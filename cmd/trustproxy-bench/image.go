//go:build bench

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/opencontainers/go-digest"
)

func (s *seededImage) dgst() digest.Digest { return digest.Digest(s.digest.String()) }

// pullImage pulls repo:tag from base with the crane library as a client
// does: manifest, config, then every layer, PullParallelism at a time. The
// library checks every layer's digest while reading it.
func (e *benchEnv) pullImage(ctx context.Context, base, repoTag string) (time.Duration, int64, error) {
	u, err := url.Parse(base)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	img, err := crane.Pull(u.Host+"/"+repoTag, crane.Insecure, crane.WithContext(ctx))
	if err != nil {
		return 0, 0, fmt.Errorf("pull %s from %s: %w", repoTag, base, err)
	}
	if _, err := img.RawConfigFile(); err != nil {
		return 0, 0, fmt.Errorf("pull %s config: %w", repoTag, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	sem := make(chan struct{}, e.s.PullParallelism)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var firstErr error
	for _, l := range layers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rc, err := l.Compressed()
			var n int64
			if err == nil {
				n, err = io.Copy(io.Discard, rc)
				if cerr := rc.Close(); err == nil {
					err = cerr
				}
			}
			mu.Lock()
			total += n
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("pull %s layer: %w", repoTag, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(start), total, firstErr
}

// coldImage pulls the multi-layer image through fresh proxies (and from the
// upstream directly, for reference) ColdRuns times.
func (e *benchEnv) coldImage(ctx context.Context, rep *Report) error {
	img := e.image
	var want int64
	for _, s := range img.sizes {
		want += s
	}
	secs := map[string][]float64{}
	record := func(col string, d time.Duration, n int64, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", col, err)
		}
		if n != want {
			return fmt.Errorf("%s: pulled %d layer bytes, want %d", col, n, want)
		}
		secs[col] = append(secs[col], d.Seconds())
		return nil
	}
	for run := range e.s.ColdRuns {
		d, n, err := e.pullImage(ctx, e.upstream.url, img.repoTag)
		if err := record(colUpstream, d, n, err); err != nil {
			return err
		}
		tp, err := e.startTrustproxy(ctx, e.trust)
		if err != nil {
			return err
		}
		err = e.profile(tp, fmt.Sprintf("cold-image-%d", run), func() error {
			d, n, err = e.pullImage(ctx, tp.url, img.repoTag)
			return err
		})
		e.discard(tp)
		if err := record(colTP, d, n, err); err != nil {
			return err
		}
		dp, err := e.startDistProxy(ctx)
		if err != nil {
			return err
		}
		d, n, err = e.pullImage(ctx, dp.url, img.repoTag)
		e.discard(dp)
		if err := record(colDist, d, n, err); err != nil {
			return err
		}
	}
	title := fmt.Sprintf("%d×%d MiB image, cold, crane", e.s.ImageLayers, e.s.LayerMiB)
	rep.add(sampled(scColdImage, title+": time", "s", "lower", secs))
	tput := map[string][]float64{}
	for k, v := range secs {
		for _, s := range v {
			tput[k] = append(tput[k], float64(want)/mib/s)
		}
	}
	rep.add(sampled(scColdImage, title+": throughput", "MiB/s", "higher", tput))
	return nil
}
