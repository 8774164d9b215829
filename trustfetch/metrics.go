package trustfetch

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is a collector per repository: gauges are read from the current
// index at scrape time, so seconds-to-expiry counts down between refreshes.
type metrics struct {
	r                   *Repository
	reg                 prometheus.Registerer
	refreshes, failures atomic.Uint64

	refreshesDesc, failuresDesc, versionDesc, expiryDesc, targetsDesc, readyDesc *prometheus.Desc
}

func newMetrics(r *Repository, reg prometheus.Registerer) (*metrics, error) {
	labels := prometheus.Labels{"repository": r.cfg.Name}
	d := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc("trustproxy_trust_"+name, help, variable, labels)
	}
	m := &metrics{
		r:             r,
		refreshesDesc: d("refreshes_total", "Trust metadata refreshes attempted."),
		failuresDesc:  d("refresh_failures_total", "Trust metadata refreshes that failed."),
		versionDesc:   d("metadata_version", "Version of the verified TUF metadata in use, by role.", "role"),
		expiryDesc:    d("seconds_to_expiry", "Seconds until the trust data in use expires (negative: expired)."),
		targetsDesc:   d("targets", "Targets the trust data in use vouches for."),
		readyDesc:     d("ready", "1 if the repository vouches with fresh verified trust data, 0 if it vouches for nothing."),
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("trust repository %q: metrics are already registered (repository names must be unique; Close the previous one)", r.cfg.Name)
			}
			return nil, fmt.Errorf("trust repository %q: register metrics: %w", r.cfg.Name, err)
		}
		m.reg = reg
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m)
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.refreshesDesc, m.failuresDesc, m.versionDesc, m.expiryDesc, m.targetsDesc, m.readyDesc} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.refreshesDesc, prometheus.CounterValue, float64(m.refreshes.Load()))
	ch <- prometheus.MustNewConstMetric(m.failuresDesc, prometheus.CounterValue, float64(m.failures.Load()))
	ready := 0.0
	if _, err := m.r.Index(); err == nil {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(m.readyDesc, prometheus.GaugeValue, ready)
	ix := m.r.current.Load()
	if ix == nil {
		ch <- prometheus.MustNewConstMetric(m.targetsDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.targetsDesc, prometheus.GaugeValue, float64(ix.Len()))
	ch <- prometheus.MustNewConstMetric(m.expiryDesc, prometheus.GaugeValue, ix.expires.Sub(m.r.now()).Seconds())
	v := ix.versions
	for role, n := range map[string]int64{"root": v.Root, "timestamp": v.Timestamp, "snapshot": v.Snapshot, "targets": v.Targets} {
		ch <- prometheus.MustNewConstMetric(m.versionDesc, prometheus.GaugeValue, float64(n), role)
	}
}

// RegisterMetrics registers the metrics of a repository opened without a
// Registerer: a configuration reload opens a changed repository while the
// old one still holds the name's metrics, and registers it once it has
// replaced (and Closed) the old one.
func (r *Repository) RegisterMetrics(reg prometheus.Registerer) error {
	m, err := newMetrics(r, reg)
	if err != nil {
		return err
	}
	r.metrics = m
	return nil
}
