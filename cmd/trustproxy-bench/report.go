//go:build bench

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Columns of the table: who served.
const (
	colUpstream = "upstream"
	colTP       = "trustproxy"
	colDist     = "distribution-proxy"
)

// Report is what a run measured. It is written as JSON; printTable shows it.
type Report struct {
	Schema          int       `json:"schema"`
	Started         time.Time `json:"started"`
	DurationSeconds float64   `json:"duration_seconds"`
	Machine         Machine   `json:"machine"`
	Settings        Settings  `json:"settings"`
	Binaries        Binaries  `json:"binaries"`
	Rows            []Row     `json:"rows"`
	Targets         []Target  `json:"targets"`
	// Ceilings are reference figures measured in the same run: what no
	// server can beat on this machine.
	Ceilings  []Row           `json:"ceilings"`
	Decisions *decisionResult `json:"decisions,omitempty"`
	HashBins  *hashBinsResult `json:"hashbins,omitempty"`
	// Notes say what bounds the numbers, as measured in this run.
	Notes  []string `json:"notes,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// Machine describes where the run happened; load matters on a shared box.
type Machine struct {
	GOOS, GOARCH string
	CPUs         int     `json:"cpus"`
	GoVersion    string  `json:"go_version"`
	Kernel       string  `json:"kernel"`
	LoadStart    float64 `json:"loadavg1_start"`
	LoadEnd      float64 `json:"loadavg1_end"`
}

// Binaries are the servers that ran.
type Binaries struct {
	Registry   string `json:"registry"`
	Trustproxy string `json:"trustproxy"`
}

// Row is one metric for each server that was measured.
type Row struct {
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// Better is "higher" or "lower".
	Better string `json:"better"`
	// Values are medians (or the single value) per column.
	Values map[string]float64 `json:"values"`
	// Samples are the raw measurements per column, when repeated.
	Samples map[string][]float64 `json:"samples,omitempty"`
}

// ratio returns a/b for the row's columns, NaN if either is missing.
func (r Row) ratio(a, b string) float64 {
	x, ok1 := r.Values[a]
	y, ok2 := r.Values[b]
	if !ok1 || !ok2 || y == 0 {
		return math.NaN()
	}
	return x / y
}

// Target is one goal of the issue, checked against this run.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
	// Missing: the scenario did not produce the number (see errors).
	Missing bool `json:"missing,omitempty"`
}

func (rep *Report) add(r Row) { rep.Rows = append(rep.Rows, r) }

func (rep *Report) target(name, want string, got float64, unit string, met bool) {
	t := Target{Name: name, Want: want, Got: got, Unit: unit, Met: met}
	if math.IsNaN(got) || math.IsInf(got, 0) {
		t.Got, t.Met, t.Missing = 0, false, true
	}
	rep.Targets = append(rep.Targets, t)
}

func (rep *Report) note(format string, a ...any) {
	rep.Notes = append(rep.Notes, fmt.Sprintf(format, a...))
}

// row returns the first row of scenario/metric, or nil.
func (rep *Report) row(scenario, metric string) *Row {
	for i := range rep.Rows {
		if rep.Rows[i].Scenario == scenario && rep.Rows[i].Metric == metric {
			return &rep.Rows[i]
		}
	}
	return nil
}

// sampled builds a row of medians from samples.
func sampled(scenario, metric, unit, better string, samples map[string][]float64) Row {
	r := Row{Scenario: scenario, Metric: metric, Unit: unit, Better: better, Values: map[string]float64{}, Samples: samples}
	for k, v := range samples {
		if len(v) > 0 {
			r.Values[k] = median(v)
		}
	}
	return r
}

func single(scenario, metric, unit, better string, values map[string]float64) Row {
	return Row{Scenario: scenario, Metric: metric, Unit: unit, Better: better, Values: values}
}

func median(v []float64) float64 { return percentile(v, 50) }

// percentile is the nearest-rank percentile of v (not modified).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(0, min(len(s)-1, rank-1))]
}

func writeReport(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

func cell(r Row, col string) string {
	v, ok := r.Values[col]
	if !ok {
		return "—"
	}
	return fmtNum(v)
}

// printTable prints the rows (medians), the ratios of trustproxy to the
// upstream and to distribution's proxy, and the targets.
func printTable(w io.Writer, rep *Report) {
	mode := "full"
	if rep.Settings.Quick {
		mode = "quick (smoke test, not a measurement)"
	}
	fmt.Fprintf(w, "trustproxy-bench, %s run, %s, %d CPUs, load %.2f → %.2f, %.0fs\n\n",
		mode, rep.Started.Format(time.RFC3339), rep.Machine.CPUs, rep.Machine.LoadStart, rep.Machine.LoadEnd, rep.DurationSeconds)
	if rep.Settings.Overlay != "" {
		fmt.Fprintf(w, "trustproxy built with go build -overlay %s\n\n", rep.Settings.Overlay)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "scenario\tmetric\tunit\tupstream\ttrustproxy\tdist proxy\ttp/upstream\ttp/dist\t")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Scenario, r.Metric, unitOf(r), cell(r, colUpstream), cell(r, colTP), cell(r, colDist),
			fmtRatio(r.ratio(colTP, colUpstream)), fmtRatio(r.ratio(colTP, colDist)))
	}
	tw.Flush()
	if len(rep.Ceilings) > 0 {
		fmt.Fprintln(w, "\nceilings measured in this run:")
		for _, r := range rep.Ceilings {
			for _, k := range sortedKeys(r.Values) {
				fmt.Fprintf(w, "  %-40s %10s %s\n", r.Metric+" ("+k+")", fmtNum(r.Values[k]), r.Unit)
			}
		}
	}
	if d := rep.Decisions; d != nil {
		fmt.Fprintf(w, "\ntrust repository of %d targets (targets.json %.1f MiB):\n", d.Targets, float64(d.TargetsJSONBytes)/(1<<20))
		fmt.Fprintf(w, "  decisions/s (1 core, audit line written)  %10s\n", fmtNum(d.DecisionsPerSecond))
		fmt.Fprintf(w, "  allocations per decision                  %10s (%s bytes)\n", fmtNum(d.AllocsPerDecision), fmtNum(d.BytesPerDecision))
		fmt.Fprintf(w, "  index lookups/s (1 core)                  %10s\n", fmtNum(d.LookupsPerSecond))
		fmt.Fprintf(w, "  initial refresh (open)                    %10s s\n", fmtNum(d.InitialRefreshSeconds))
		fmt.Fprintf(w, "  refresh, nothing changed                  %10s s\n", fmtNum(d.UnchangedRefreshSeconds))
		fmt.Fprintf(w, "  refresh after one target was added        %10s s\n", fmtNum(d.ChangedRefreshSeconds))
		fmt.Fprintf(w, "  index heap                                %10s MiB\n", fmtNum(d.IndexHeapMiB))
		fmt.Fprintf(w, "  peak heap during the initial refresh      %10s MiB\n", fmtNum(d.RefreshPeakHeapMiB))
		fmt.Fprintf(w, "  publisher: sign all targets               %10s s\n", fmtNum(d.BuildSeconds))
		fmt.Fprintf(w, "  publisher: add one target + publish       %10s s\n", fmtNum(d.AddOneTargetSeconds))
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range rep.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(w, "  %-3s  %-58s got %s %s (want %s)\n", met, t.Name, fmtNum(t.Got), t.Unit, t.Want)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

func unitOf(r Row) string {
	if r.Better == "" {
		return r.Unit
	}
	arrow := "↑"
	if r.Better == "lower" {
		arrow = "↓"
	}
	return r.Unit + " " + arrow
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// readLoad returns the 1-minute load average.
func readLoad() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	var l float64
	fmt.Sscanf(strings.TrimSpace(string(b)), "%f", &l)
	return l
}
