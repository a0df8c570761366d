package lifecycle

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// appEvents counts application events by name and outcome: "ok", "forbidden"
// (refused as unverified) or "failed".
var appEvents = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadrouter_app_events_total",
	Help: "Application lifecycle events handled, by event and outcome.",
}, []string{"event", "outcome"})

// sweepActions counts what the lifecycle sweep did: "finished" pending installs,
// "gave_up" on them, "rebound" portals and "refreshed" idle tokens.
var sweepActions = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadrouter_lifecycle_sweep_actions_total",
	Help: "Portals the lifecycle sweep finished, gave up on, bound again or refreshed.",
}, []string{"action"})
