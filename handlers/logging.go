package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// requestInfo is what the log lines of one request share: its ID and, once a
// handler has learned it, the portal the request concerns. WithRequestID puts it in
// the request's context.
type requestInfo struct {
	id string

	mu       sync.Mutex // guards memberID
	memberID string
}

// SetMember records that the request concerns the portal memberID, so that the
// request's access log line and any error Handle logs carry its member_id. A
// handler calls it as soon as it knows the portal: from the verified session, the
// event's auth[member_id], the install or frame form, or the intake source. A
// value that is not a plain ID, such as junk in a forged form, is ignored.
func SetMember(c *gin.Context, memberID string) {
	info, _ := c.Request.Context().Value(requestIDKey{}).(*requestInfo)
	if info == nil || !plainID(memberID) {
		return
	}
	info.mu.Lock()
	info.memberID = memberID
	info.mu.Unlock()
}

// MemberID returns the portal SetMember recorded for the request of ctx, or "".
func MemberID(ctx context.Context) string {
	info, _ := ctx.Value(requestIDKey{}).(*requestInfo)
	if info == nil {
		return ""
	}
	info.mu.Lock()
	defer info.mu.Unlock()
	return info.memberID
}

// requestAttrs returns the attributes that name a request on a line about its
// failure: request_id, the route's path pattern, and member_id when known.
func requestAttrs(c *gin.Context) []any {
	ctx := c.Request.Context()
	attrs := []any{"request_id", RequestID(ctx), "path", c.FullPath()}
	if m := MemberID(ctx); m != "" {
		attrs = append(attrs, "member_id", m)
	}
	return attrs
}

// quietRoutes are the busy routes whose successful requests are logged at Debug:
// portals post thousands of events a second, and probes and scrapers poll the
// operator's endpoints all day.
var quietRoutes = map[string]bool{
	"/events": true, "/healthz": true, "/readyz": true, "/metrics": true,
}

// AccessLog is middleware that logs one line per request once it is answered,
// "http request" with method, route, status, duration_ms, request_id and, when a
// handler learned it, member_id. It must follow WithRequestID.
//
// The route is the pattern that matched ("/intake/:source"; empty when none did),
// never the path and query as sent: those may carry a portal's AUTH_ID or an intake
// secret. Server errors are logged at Warn, successes of the quiet routes (/events,
// /healthz, /readyz, /metrics) at Debug, everything else at Info.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()

		ctx := c.Request.Context()
		status, route := c.Writer.Status(), c.FullPath()
		level := accessLevel(route, status)
		if !log.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 6)
		attrs = append(attrs,
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", RequestID(ctx)))
		if m := MemberID(ctx); m != "" {
			attrs = append(attrs, slog.String("member_id", m))
		}
		log.LogAttrs(ctx, level, "http request", attrs...)
	}
}

// accessLevel is the level of a request's access log line.
func accessLevel(route string, status int) slog.Level {
	switch {
	case status >= http.StatusInternalServerError:
		return slog.LevelWarn
	case status < http.StatusBadRequest && quietRoutes[route]:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// WithRequestIDs wraps h so that lines logged with a request's context
// (InfoContext and the like, anywhere below the handlers) carry the request's
// request_id, unless they name one themselves. Lines without a request in their
// context are passed on unchanged.
func WithRequestIDs(h slog.Handler) slog.Handler {
	return requestIDHandler{Handler: h}
}

// requestIDHandler is the slog.Handler WithRequestIDs returns. named reports
// whether attributes added with WithAttrs already include a request_id.
type requestIDHandler struct {
	slog.Handler
	named bool
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" && !h.named && !hasAttr(r, "request_id") {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	named := h.named
	for _, a := range attrs {
		named = named || a.Key == "request_id"
	}
	return requestIDHandler{Handler: h.Handler.WithAttrs(attrs), named: named}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{Handler: h.Handler.WithGroup(name), named: h.named}
}

// hasAttr reports whether r has a top-level attribute named key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
