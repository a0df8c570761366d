package intake

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// PostsReceived counts intake posts by how they were answered: "accepted",
	// "duplicate", "invalid", "unauthorized", "rate_limited", "too_large".
	PostsReceived = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "leadrouter_intake_posts_total",
		Help: "Intake posts received, by answer.",
	}, []string{"outcome"})

	postsCreated = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_intake_leads_created_total",
		Help: "Leads created from intake posts.",
	})
	postsDead = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_intake_dead_letters_total",
		Help: "Intake posts whose lead could not be created and became dead letters.",
	})
	attemptsFailed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_intake_attempts_failed_total",
		Help: "Attempts to create an intake lead that failed and will be retried.",
	})
	overridesRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "leadrouter_intake_overrides_refused_total",
		Help: "Posts naming a responsible person who is not an active user; routed instead.",
	})
)
