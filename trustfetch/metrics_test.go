package trustfetch

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	r := releasesRepo(t)
	srv := newTrustServer(t, r.dir)
	reg := prometheus.NewRegistry()
	clock := newTestClock()
	repo := r.open(srv.metadataURL(), func(c *Config, o *Options) { c.Name, o.Registerer, o.Now = "acme", reg, clock.Now })
	srv.down.Store(true)
	_ = repo.Refresh(t.Context())
	ix := mustIndex(t, repo)
	clock.Set(ix.Expires().Add(-90 * time.Second))

	want := map[string]float64{
		`trustproxy_trust_metadata_version{repository="acme",role="root"}`:      1,
		`trustproxy_trust_metadata_version{repository="acme",role="snapshot"}`:  1,
		`trustproxy_trust_metadata_version{repository="acme",role="targets"}`:   1,
		`trustproxy_trust_metadata_version{repository="acme",role="timestamp"}`: 1,
		`trustproxy_trust_ready{repository="acme"}`:                             1,
		`trustproxy_trust_refresh_failures_total{repository="acme"}`:            1,
		`trustproxy_trust_refreshes_total{repository="acme"}`:                   2,
		`trustproxy_trust_seconds_to_expiry{repository="acme"}`:                 90,
		`trustproxy_trust_targets{repository="acme"}`:                           2,
	}
	if got := gather(t, reg); !maps.Equal(got, want) {
		t.Fatalf("metrics:\n%v\nwant\n%v", got, want)
	}
	clock.Set(ix.Expires())
	if got := gather(t, reg)[`trustproxy_trust_ready{repository="acme"}`]; got != 0 {
		t.Fatalf("ready after expiry = %v", got)
	}

	// Names are unique per registry; Close frees the name.
	_, err := Open(t.Context(), Config{Name: "acme", Metadata: srv.metadataURL(), Root: r.rootPath, StateDir: t.TempDir()}, Options{Registerer: reg})
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second Open with the same name: %v", err)
	}
	must(t, repo.Close())
	again, err := Open(t.Context(), Config{Name: "acme", Metadata: srv.metadataURL(), Root: r.rootPath, StateDir: t.TempDir()}, Options{Registerer: reg})
	must(t, err)
	_ = again.Close()
	// Another name registers alongside.
	srv.down.Store(false)
	r.open(srv.metadataURL(), func(c *Config, o *Options) { c.Name, o.Registerer = "other", reg })
	if got := gather(t, reg)[`trustproxy_trust_targets{repository="other"}`]; got != 2 {
		t.Fatalf("second repository's targets = %v", got)
	}
}

// gather flattens a registry to "name{labels}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
