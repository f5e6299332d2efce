package node

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/proto"
)

// metrics are the Prometheus metrics of one node, in a registry of their
// own (no global state, so several nodes run in one process). Gauges are
// read at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kadre_requests_total", Help: "RPC requests by type and outcome (ok or the refusal code).",
		}, []string{"type", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kadre_request_duration_seconds", Help: "RPC handling time by type.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"type"}),
	}
	count := func(tombstones bool) func() float64 {
		return func() float64 {
			g, t, err := n.store.Counts()
			switch {
			case err != nil:
				return -1
			case tombstones:
				return float64(t)
			}
			return float64(g)
		}
	}
	m.reg.MustRegister(m.requests, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_grants", Help: "Grants stored."}, count(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_tombstones", Help: "Revocation tombstones stored."}, count(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_peers", Help: "Connected peers."},
			func() float64 { return float64(n.host.ConnectedPeers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_routing_table_peers", Help: "Peers in the DHT routing table."},
			func() float64 { return float64(n.host.RoutingTableSize()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kadre_kfrag_cache_hits_total", Help: "Re-encryptions that found their verified kfrag in memory."},
			func() float64 { h, _, _ := n.svc.KFragCacheStats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kadre_kfrag_cache_misses_total", Help: "Re-encryptions that verified their kfrag again."},
			func() float64 { _, m, _ := n.svc.KFragCacheStats(); return float64(m) }),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	for k, name := range stateNames {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kadre_state_units", Help: "State kept for others (SPEC.md §8.2), by kind.",
			ConstLabels: prometheus.Labels{"kind": name}}, func() float64 {
			u, err := n.store.UsageOf(policy.PublicKey{}, nil)
			if err != nil {
				return -1
			}
			return float64(u.Node[k])
		}))
	}
	return m
}

func (m *metrics) observe(kind string, code proto.Code, d time.Duration) {
	outcome := "ok"
	if code != proto.Code_CODE_UNSPECIFIED {
		outcome = strings.ToLower(code.String())
	}
	m.requests.WithLabelValues(kind, outcome).Inc()
	m.latency.WithLabelValues(kind).Observe(d.Seconds())
}
