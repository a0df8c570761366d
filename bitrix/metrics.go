package bitrix

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// restRequests counts every HTTP request sent to a portal, by its outcome:
	// "ok", an error class ("query_limit", "not_found", ...), "error" for other
	// portal errors, "moved" for a redirect, "transport" or "timeout". Failures
	// carry the portal's member_id, so that a portal in trouble stands out;
	// successes carry an empty one, as thousands of portals would make too many
	// series.
	restRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_rest_requests_total",
		Help: "REST requests sent to Bitrix24 portals, by method and outcome, " +
			"and by portal for failures.",
	}, []string{"member_id", "method", "outcome"})

	// restLatency is the time from sending a request to reading its answer. It
	// has no member_id label: thousands of portals would make too many series.
	restLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "leadrouter_rest_request_duration_seconds",
		Help:    "Latency of REST requests to Bitrix24 portals, by method.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"method"})

	// limiterWait is how long callers were told to wait for a slot in a
	// portal's bucket.
	limiterWait = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "leadrouter_rest_limiter_wait_seconds",
		Help:    "Time requests waited for a slot in the portal's rate-limit bucket.",
		Buckets: []float64{0, .01, .1, .5, 1, 2, 5, 10, 30, 60},
	})
)
