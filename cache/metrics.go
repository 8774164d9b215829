package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

const metricsNamespace = "trustproxy"
const metricsSubsystem = "cache"

// metrics are always created so the code can count unconditionally; they are
// only exposed when Options.Registerer is set.
type metrics struct {
	hits             *prometheus.CounterVec // kind
	misses           *prometheus.CounterVec // kind
	coalesced        prometheus.Counter
	inflight         prometheus.Gauge
	inflightReaders  prometheus.Gauge
	digestMismatches *prometheus.CounterVec // kind
	sizeMismatches   prometheus.Counter
	evictions        prometheus.Counter
	storedBytes      prometheus.Gauge
	storedObjects    prometheus.Gauge
	fetches          prometheus.Counter
	fetchErrors      prometheus.Counter
	commitErrors     prometheus.Counter
	clusterWaits     prometheus.Counter
	clusterAdopted   prometheus.Counter
	// manifestMemoryHits counts manifest reads answered from memory;
	// manifestHits is hits{kind="manifest"}, resolved once for that path.
	manifestMemoryHits prometheus.Counter
	manifestHits       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help})
	}
	byKind := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}, []string{"kind"})
	}
	m := &metrics{
		hits:             byKind("hits_total", "Requests served from the committed cache."),
		misses:           byKind("misses_total", "Requests not in the committed cache."),
		coalesced:        counter("coalesced_waiters_total", "Blob misses that joined a download already in flight instead of fetching."),
		inflight:         gauge("inflight_fetches", "Upstream blob downloads in flight."),
		inflightReaders:  gauge("inflight_readers", "Readers following a download in flight."),
		digestMismatches: byKind("digest_mismatches_total", "Objects refused because their bytes did not match their digest."),
		sizeMismatches:   counter("size_mismatches_total", "Blob downloads refused because their length did not match (truncated, overlong, wrong Content-Length)."),
		evictions:        counter("evictions_total", "Objects evicted to stay under the size limit."),
		storedBytes:      gauge("stored_bytes", "Bytes of committed objects held."),
		storedObjects:    gauge("stored_objects", "Committed objects held."),
		fetches:          counter("upstream_fetches_total", "Calls of the upstream fetch function."),
		fetchErrors:      counter("upstream_fetch_errors_total", "Upstream blob downloads that failed (request or body)."),
		commitErrors:     counter("commit_errors_total", "Verified objects that could not be written to the storage driver."),
		clusterWaits:     counter("cluster_waits_total", "Blob misses that waited for another replica's download (its lease was held)."),
		clusterAdopted:   counter("cluster_adopted_total", "Blob misses served from another replica's commit after waiting for it."),
		manifestMemoryHits: counter("manifest_memory_hits_total",
			"Manifest reads answered from the verified bodies held in memory (storage.manifestmemory); also counted in hits_total."),
	}
	m.manifestHits = m.hits.WithLabelValues(kindManifest.String())
	for _, c := range []prometheus.Collector{
		m.hits, m.misses, m.coalesced, m.inflight, m.inflightReaders, m.digestMismatches, m.sizeMismatches,
		m.evictions, m.storedBytes, m.storedObjects, m.fetches, m.fetchErrors, m.commitErrors,
		m.clusterWaits, m.clusterAdopted, m.manifestMemoryHits,
	} {
		if reg == nil {
			break
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register cache metrics: %w", err)
		}
	}
	return m, nil
}
