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

	// Rounds interleave the three servers, each doing its share of the
	// sequential and of the concurrent requests in turn, so that load
	// drifting on the shared machine hits them alike; the rate is the
	// median of the rounds' rates.
	rounds := 5
	if e.s.Quick {
		rounds = 2
	}
	cols := []string{colUpstream, colTP, colDist}
	return e.profile(tp, "manifests", func() error {
		for _, k := range kinds {
			seqP50, seqP99 := map[string]float64{}, map[string]float64{}
			conP50, conP99, conRate := map[string]float64{}, map[string]float64{}, map[string]float64{}
			seq, con, rates := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
			one := func(col string) (float64, error) {
				start := time.Now()
				err := e.manifestRequest(ctx, servers[col].url, img.repo, k.ref, k.method, want)
				return float64(time.Since(start).Microseconds()) / 1000, err
			}
			for _, col := range cols {
				for range 10 { // warm: caches, connections, token
					if _, err := one(col); err != nil {
						return fmt.Errorf("%s: %w", col, err)
					}
				}
			}
			for round := range rounds {
				for i := range cols {
					col := cols[(i+round)%len(cols)] // who goes first rotates
					for range max(1, e.s.ManifestRequests/rounds) {
						ms, err := one(col)
						if err != nil {
							return fmt.Errorf("%s: %w", col, err)
						}
						seq[col] = append(seq[col], ms)
					}
					lat, rate, err := e.manifestClients(col, one, max(1, e.s.ManifestPerClient/rounds))
					if err != nil {
						return err
					}
					con[col] = append(con[col], lat...)
					rates[col] = append(rates[col], rate)
				}
			}
			for _, col := range cols {
				seqP50[col], seqP99[col] = percentile(seq[col], 50), percentile(seq[col], 99)
				conP50[col], conP99[col] = percentile(con[col], 50), percentile(con[col], 99)
				conRate[col] = median(rates[col])
			}
			name := fmt.Sprintf("%s by %s", k.method, k.by)
			r := single(scManifests, name+", sequential p50", "ms", "lower", seqP50)
			rep.add(r)
			rep.add(single(scManifests, name+", sequential p99", "ms", "lower", seqP99))
			rep.add(single(scManifests, fmt.Sprintf("%s, %d clients p50", name, e.s.ManifestClients), "ms", "lower", conP50))
			rep.add(single(scManifests, fmt.Sprintf("%s, %d clients p99", name, e.s.ManifestClients), "ms", "lower", conP99))
			rc := single(scManifests, fmt.Sprintf("%s, %d clients", name, e.s.ManifestClients), "req/s", "higher", conRate)
			rep.add(rc)
			if k.method == "GET" && k.by == "tag" {
				ratio := r.ratio(colTP, colUpstream)
				rep.target("manifest GET by tag p50: trustproxy / upstream direct", "≤ 0.5", ratio, "×", ratio <= 0.5)
				rr := rc.ratio(colTP, colUpstream)
				rep.target(fmt.Sprintf("manifest GET by tag, %d clients: trustproxy / upstream req/s (median of rounds)", e.s.ManifestClients), "≥ 3", rr, "×", rr >= 3)
			}
		}
		return nil
	})
}

// manifestClients runs ManifestClients concurrent clients doing perClient
// requests each against col, and returns their latencies and the rate.
func (e *benchEnv) manifestClients(col string, one func(string) (float64, error), perClient int) ([]float64, float64, error) {
	lat := make([][]float64, e.s.ManifestClients)
	errs := make([]error, e.s.ManifestClients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range e.s.ManifestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				ms, err := one(col)
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
			return nil, 0, fmt.Errorf("%s concurrent: %w", col, errs[c])
		}
		all = append(all, lat[c]...)
	}
	return all, float64(len(all)) / el.Seconds(), nil
}
