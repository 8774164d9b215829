package policy

import "github.com/prometheus/client_golang/prometheus"

// Metrics count decisions per rule and verdict. They outlive engines: a
// configuration reload builds a new engine with the same Metrics.
type Metrics struct {
	decisions *prometheus.CounterVec
}

// NewMetrics registers trustproxy_policy_decisions_total with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "trustproxy", Name: "policy_decisions_total",
		Help: `Policy decisions by rule ("" when no rule matched) and verdict (allow, deny, audit-fail, allow-exception).`,
	}, []string{"rule", "verdict"})}
	reg.MustRegister(m.decisions)
	return m
}

func (m *Metrics) observe(rule, verdict string) {
	if m != nil {
		m.decisions.WithLabelValues(rule, verdict).Inc()
	}
}
