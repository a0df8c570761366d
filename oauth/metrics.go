package oauth

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// refreshes counts token refresh attempts at OAuth servers by outcome: "ok", an
// OAuth error code such as "invalid_grant", "error" (network, server trouble),
// "store_failed" or "wrong_portal".
var refreshes = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "leadrouter_token_refreshes_total",
	Help: "Token refresh requests made to OAuth servers, by outcome.",
}, []string{"outcome"})
