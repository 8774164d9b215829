package proxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests        *prometheus.CounterVec
	bytesServed     *prometheus.CounterVec
	upstreamLatency *prometheus.HistogramVec
	decisions       *prometheus.CounterVec
	servedBy        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustproxy", Name: "http_requests_total",
			Help: "Requests served, by kind (manifest, blob, tags) and status code (0 = aborted).",
		}, []string{"kind", "code"}),
		bytesServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustproxy", Name: "http_response_bytes_total",
			Help: "Response body bytes sent to clients, by kind.",
		}, []string{"kind"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "trustproxy", Name: "upstream_request_seconds",
			Help:    "Time to upstream response headers, by upstream and kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"upstream", "kind"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustproxy", Name: "decisions_total",
			Help: "Manifest decisions by verdict (allow, deny, audit-fail, child).",
		}, []string{"verdict"}),
		servedBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "trustproxy", Name: "upstream_responses_total",
			Help: "Upstream responses by upstream, kind and the host that answered after redirects (a CDN, a storage bucket).",
		}, []string{"upstream", "kind", "host"}),
	}
	reg.MustRegister(m.requests, m.bytesServed, m.upstreamLatency, m.decisions, m.servedBy)
	return m
}
