package routing

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	decisionsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_routing_decisions_total",
		Help: "Routing decisions by outcome (assigned, held, not_routed) and whether " +
			"the lead had been decided before.",
	}, []string{"outcome", "repeated"})
	skipsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_routing_skips_total",
		Help: "Candidates passed over in routing decisions, by reason.",
	}, []string{"reason"})
	decideSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "leadrouter_routing_decide_seconds",
		Help:    "Time to decide one lead, including the Redis script call.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 12),
	})
)

// observe counts a decision in the metrics.
func observe(d Decision) {
	repeated := "false"
	if d.Repeated {
		repeated = "true"
	}
	decisionsTotal.WithLabelValues(string(d.Outcome), repeated).Inc()
	if d.Repeated {
		return
	}
	for _, e := range d.Trace.Entries {
		if e.Code == CodeSkipped {
			skipsTotal.WithLabelValues(e.Params["reason"]).Inc()
		}
	}
}
