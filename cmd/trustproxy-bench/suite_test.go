//go:build bench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestQuickSuite runs the whole suite in its quick mode, end to end (real
// registry binaries, trustproxy binary, TUF repository), and checks that the
// report is complete and well-formed. It never asserts a speed.
func TestQuickSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and starts servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-quick", "-out", out}, &stdout, &stderr)
	t.Logf("table:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report does not decode: %v", err)
	}
	if !rep.Settings.Quick || len(rep.Errors) != 0 {
		t.Fatalf("quick=%v errors=%v", rep.Settings.Quick, rep.Errors)
	}
	if rep.Binaries.Registry == "" || !strings.Contains(rep.Binaries.Registry, registryVersion) {
		t.Errorf("registry binary %q is not %s", rep.Binaries.Registry, registryVersion)
	}

	// Every scenario produced rows, and every value is a finite, positive
	// measurement (upstream GET counts may not be zero either: both proxies
	// had to fetch the cold blob at least once).
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		seen[r.Scenario] = true
		if r.Better != "higher" && r.Better != "lower" {
			t.Errorf("%s/%s: better=%q", r.Scenario, r.Metric, r.Better)
		}
		if len(r.Values) == 0 {
			t.Errorf("%s/%s: no values", r.Scenario, r.Metric)
		}
		for col, v := range r.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("%s/%s/%s = %v", r.Scenario, r.Metric, col, v)
			}
			if v == 0 && !strings.Contains(r.Metric, "CPU") {
				t.Errorf("%s/%s/%s = 0", r.Scenario, r.Metric, col)
			}
		}
	}
	for _, sc := range []string{scCachedBlob, scColdBlob, scColdImage, scManifests, scConcurrent, scS3, scReplicas, scStartupBig, scHashBins} {
		if !seen[sc] {
			t.Errorf("no rows for scenario %s", sc)
		}
	}
	// The three-way comparisons have all three columns.
	for _, r := range rep.Rows {
		if r.Scenario == scCachedBlob || r.Scenario == scManifests || (r.Scenario == scColdImage) {
			for _, col := range []string{colUpstream, colTP, colDist} {
				if _, ok := r.Values[col]; !ok {
					t.Errorf("%s/%s: no %s value", r.Scenario, r.Metric, col)
				}
			}
		}
	}
	if len(rep.Ceilings) != 2 {
		t.Errorf("%d ceilings, want sha256 and the loopback file server", len(rep.Ceilings))
	}
	d := rep.Decisions
	if d == nil || d.Targets != rep.Settings.TrustTargets || d.DecisionsPerSecond <= 0 || d.InitialRefreshSeconds <= 0 || d.IndexHeapMiB < 0 {
		t.Errorf("decisions: %+v", d)
	}
	// Every target of the issue is reported (met or not: this is a smoke
	// test, the numbers of a quick run on a shared machine mean nothing).
	// Six of the first performance issue, three of the S3 and replica rows,
	// two of issue 16 (cold blob against the upstream, manifests req/s),
	// seven of the hash-bin scenario, at least: other scenarios may add theirs.
	if len(rep.Targets) < 18 {
		t.Errorf("%d targets reported, want at least 18: %+v", len(rep.Targets), rep.Targets)
	}
	for _, name := range []string{"cold blob: trustproxy time / upstream direct time", "manifest GET by tag p50", "manifest GET by tag, ",
		fmt.Sprintf("%d targets in hash bins: ready from an empty state", rep.Settings.HashBinTargets)} {
		if !slices.ContainsFunc(rep.Targets, func(tg Target) bool { return strings.HasPrefix(tg.Name, name) }) {
			t.Errorf("no target %q reported", name)
		}
	}
	if h := rep.HashBins; h == nil || h.Targets != rep.Settings.HashBinTargets || h.ColdS <= 0 || h.WarmS <= 0 || h.RefreshKB <= 0 ||
		h.Decisions == nil || h.Decisions.DecisionsPerSecond <= 0 {
		t.Errorf("hashbins: %+v", h)
	}
	for _, tg := range rep.Targets {
		if tg.Missing || tg.Want == "" || tg.Name == "" {
			t.Errorf("target %+v", tg)
		}
	}
	for _, want := range []string{"tp/upstream", "targets:", "decisions/s"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// The run cleaned up after itself: no work directory left.
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "trustproxy-bench-*")); len(m) > 0 {
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.ModTime().After(rep.Started) {
				t.Errorf("work directory left behind: %s", p)
			}
		}
	}
}
