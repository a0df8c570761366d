package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pinger reports whether a dependency answers; *redis.Client and
// *redis.ClusterClient satisfy it through PingFunc.
type Pinger func(ctx context.Context) error

// Health serves the operator's endpoints: liveness, readiness and metrics.
type Health struct {
	Log *slog.Logger
	// Redis reports whether Redis answers; /readyz fails while it does not.
	Redis Pinger
	// Gatherer is the metrics registry /metrics serves (prometheus.DefaultGatherer
	// when nil).
	Gatherer prometheus.Gatherer
	// Draining, when set and true, makes /readyz fail so a load balancer stops
	// sending traffic before the instance stops.
	Draining func() bool
}

// Register adds /healthz, /readyz and /metrics to r.
func (h *Health) Register(r gin.IRoutes) {
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.GET("/readyz", Handle(h.Log, h.ready))
	g := h.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(g, promhttp.HandlerOpts{})))
}

func (h *Health) ready(c *gin.Context) error {
	if h.Draining != nil && h.Draining() {
		return Errorf(http.StatusServiceUnavailable, "draining", "This instance is shutting down.")
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := h.Redis(ctx); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "redis_unreachable",
			Message: "Redis does not answer.", Err: err}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
	return nil
}
