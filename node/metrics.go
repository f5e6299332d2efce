package node

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
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
