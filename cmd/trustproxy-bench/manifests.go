//go:build bench

package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// manifests measures manifest GET and HEAD, by tag and by digest, on warm
// servers: sequential requests on one keep-alive connection, then
// ManifestClients concurrent clients. trustproxy resolves a tag through
// its TUF index (no upstream round trip); distribution's proxy asks the
// upstream on every by-tag request.
func (e *benchEnv) manifests(ctx context.Context, rep *Report) error {
	tp, dp, stop, err := e.startBothProxies(ctx)
	if err != nil {
		return err
	}
	defer stop()
	img := e.small
	want := img.dgst()
	servers := map[string]*server{colUpstream: e.upstream, colTP: tp, colDist: dp}
	type kind struct{ method, by, ref string }
	kinds := []kind{{"GET", "tag", "v1"}, {"HEAD", "tag", "v1"}, {"GET", "digest", want.String()}, {"HEAD", "digest", want.String()}}

	return e.profile(tp, "manifests", func() error {
		for _, k := range kinds {
			seqP50, seqP99 := map[string]float64{}, map[string]float64{}
			conP50, conP99, conRate := map[string]float64{}, map[string]float64{}, map[string]float64{}
			seqSamples := map[string][]float64{}
			for _, col := range []string{colUpstream, colTP, colDist} {
				base := servers[col].url
				one := func() (float64, error) {
					start := time.Now()
					err := e.manifestRequest(ctx, base, img.repo, k.ref, k.method, want)
					return float64(time.Since(start).Microseconds()) / 1000, err
				}
				for range 10 { // warm: caches, connections, token
					if _, err := one(); err != nil {
						return fmt.Errorf("%s: %w", col, err)
					}
				}
				var seq []float64
				for range e.s.ManifestRequests {
					ms, err := one()
					if err != nil {
						return fmt.Errorf("%s: %w", col, err)
					}
					seq = append(seq, ms)
				}
				seqP50[col], seqP99[col] = percentile(seq, 50), percentile(seq, 99)
				seqSamples[col] = seq

				lat := make([][]float64, e.s.ManifestClients)
				errs := make([]error, e.s.ManifestClients)
				var wg sync.WaitGroup
				start := time.Now()
				for c := range e.s.ManifestClients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range e.s.ManifestPerClient {
							ms, err := one()
							if err != nil {
								errs[c] = err
								return
							}
							lat[c] = append(lat[c], ms)
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				var all []float64
				for c := range lat {
					if errs[c] != nil {
						return fmt.Errorf("%s concurrent: %w", col, errs[c])
					}
					all = append(all, lat[c]...)
				}
				conP50[col], conP99[col] = percentile(all, 50), percentile(all, 99)
				conRate[col] = float64(len(all)) / el.Seconds()
			}
			name := fmt.Sprintf("%s by %s", k.method, k.by)
			r := single(scManifests, name+", sequential p50", "ms", "lower", seqP50)
			rep.add(r)
			rep.add(single(scManifests, name+", sequential p99", "ms", "lower", seqP99))
			rep.add(single(scManifests, fmt.Sprintf("%s, %d clients p50", name, e.s.ManifestClients), "ms", "lower", conP50))
			rep.add(single(scManifests, fmt.Sprintf("%s, %d clients p99", name, e.s.ManifestClients), "ms", "lower", conP99))
			rep.add(single(scManifests, fmt.Sprintf("%s, %d clients", name, e.s.ManifestClients), "req/s", "higher", conRate))
			if k.method == "GET" && k.by == "tag" {
				ratio := r.ratio(colTP, colUpstream)
				rep.target("manifest GET by tag p50: trustproxy / upstream direct", "≤ 1.5", ratio, "×", ratio <= 1.5)
			}
		}
		return nil
	})
}
