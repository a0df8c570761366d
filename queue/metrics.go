package queue

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The pipeline's metrics. REST calls are counted by the bitrix client
// (leadrouter_rest_requests_total).
var (
	// EventsIn counts POSTs to /events by outcome: "enqueued", "lifecycle",
	// "ignored", "malformed", "oversize", "unknown_event", "forbidden",
	// "unavailable", "failed".
	EventsIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_events_received_total",
		Help: "Events POSTed by portals, by outcome.",
	}, []string{"outcome"})

	mRouted = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_leads_routed_total",
		Help: "Leads given an owner by the pipeline.",
	})
	mSkipped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_leads_skipped_total",
		Help: "Lead events settled without routing, by reason.",
	}, []string{"reason"})
	mHeld = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_leads_held_total",
		Help: "Leads routing held because nobody could take them yet.",
	})
	mRetried = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_leads_retried_total",
		Help: "Lead events put back after a temporary failure.",
	})
	mDead = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_leads_dead_lettered_total",
		Help: "Leads the pipeline gave up on, by the portal's error code.",
	}, []string{"code"})
	mReclaimed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_queue_reclaimed_total",
		Help: "Stream entries taken over from workers that stopped.",
	})
	mPaused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_queue_portal_paused_total",
		Help: "Turns that ended with the portal paused for its rate or time limit.",
	})
	mLeadAge = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "leadrouter_queue_lead_age_seconds",
		Help:    "Time from a lead's event arriving to its owner being written.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 1800},
	})
	mLag = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "leadrouter_queue_lag_seconds",
		Help: "How long the portal with work that is most overdue has waited for a worker.",
	})
	mSwept = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_queue_swept_leads_total",
		Help: "Leads the reconciliation sweep found without a decision and queued.",
	})
)
