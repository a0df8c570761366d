package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/queue"
)

// logBuffer collects JSON log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the logged lines whose msg is msg, decoded.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for raw := range strings.Lines(b.String()) {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", raw, err)
		}
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// debugLog returns a JSON logger at Debug that writes to a fresh buffer.
func debugLog() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	const member = "b1946ac92492d2347c6235b4d2611184"
	tests := []struct {
		name       string
		method     string
		target     string
		handler    handlers.HandlerFunc
		wantRoute  string
		wantStatus float64
		wantLevel  string
		wantMember string
	}{
		{name: "page opened with a token in the query", method: http.MethodGet,
			target: "/app/lead?AUTH_ID=secret-auth-id&member_id=" + member,
			handler: func(c *gin.Context) error {
				handlers.SetMember(c, c.Query("member_id"))
				c.Status(http.StatusOK)
				return nil
			},
			wantRoute: "/app/:kind", wantStatus: 200, wantLevel: "INFO", wantMember: member},
		{name: "event accepted", method: http.MethodPost, target: "/events",
			handler:   func(c *gin.Context) error { c.Status(http.StatusOK); return nil },
			wantRoute: "/events", wantStatus: 200, wantLevel: "DEBUG"},
		{name: "event refused", method: http.MethodPost, target: "/events",
			handler: func(c *gin.Context) error {
				handlers.SetMember(c, member)
				return handlers.Errorf(http.StatusForbidden, "forbidden", "No.")
			},
			wantRoute: "/events", wantStatus: 403, wantLevel: "INFO", wantMember: member},
		{name: "readiness probe", method: http.MethodGet, target: "/readyz",
			handler:   func(c *gin.Context) error { c.Status(http.StatusOK); return nil },
			wantRoute: "/readyz", wantStatus: 200, wantLevel: "DEBUG"},
		{name: "internal error", method: http.MethodGet, target: "/app/x",
			handler:   func(c *gin.Context) error { return errors.New("boom") },
			wantRoute: "/app/:kind", wantStatus: 500, wantLevel: "WARN"},
		{name: "panic", method: http.MethodGet, target: "/app/x",
			handler:   func(c *gin.Context) error { panic("boom") },
			wantRoute: "/app/:kind", wantStatus: 500, wantLevel: "WARN"},
		{name: "no such route", method: http.MethodGet, target: "/nowhere?secret=secret-auth-id",
			wantRoute: "", wantStatus: 404, wantLevel: "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, buf := debugLog()
			r := gin.New()
			r.Use(handlers.WithRequestID(), handlers.AccessLog(log),
				gin.RecoveryWithWriter(io.Discard))
			if tt.handler != nil {
				r.Handle(tt.method, tt.wantRoute, handlers.Handle(log, tt.handler))
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))

			lines := buf.lines(t, "http request")
			if len(lines) != 1 {
				t.Fatalf("%s %s logged %d access lines, want 1: %s", tt.method, tt.target,
					len(lines), buf)
			}
			got := lines[0]
			want := map[string]any{"level": tt.wantLevel, "method": tt.method,
				"route": tt.wantRoute, "status": tt.wantStatus,
				"request_id": w.Header().Get(handlers.RequestIDHeader)}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("access line %s = %v, want %v", k, got[k], v)
				}
			}
			if m, _ := got["member_id"].(string); m != tt.wantMember {
				t.Errorf("access line member_id = %q, want %q", m, tt.wantMember)
			}
			if _, ok := got["duration_ms"].(float64); !ok {
				t.Errorf("access line has no duration_ms: %v", got)
			}
			if strings.Contains(buf.String(), "secret-auth-id") {
				t.Errorf("the log holds the query's token: %s", buf)
			}
		})
	}
}

func TestAccessLogQuietAtInfo(t *testing.T) {
	t.Parallel()
	buf := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(buf, nil))
	r := gin.New()
	r.Use(handlers.WithRequestID(), handlers.AccessLog(log))
	r.POST("/events", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/events", nil))
	if s := buf.String(); s != "" {
		t.Errorf("an accepted event logged at level info: %s", s)
	}
}

// TestEventsLogTheirPortal posts real events through the access log: the lines of
// an accepted and a refused event name the portal, and the event's application
// token is in none of them.
func TestEventsLogTheirPortal(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	log, buf := debugLog()
	store := eventsPortal(t, rdb, slog.New(slog.DiscardHandler))
	r := gin.New()
	r.Use(handlers.WithRequestID(), handlers.AccessLog(log))
	(&handlers.Events{Tokens: store, Queue: queue.New(rdb, nil, nil, log, queue.Config{}),
		Log: log}).Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	const forged = "0123456789abcdef0123456789abcdef"
	if code, _ := post(t, srv, leadEvent("ONCRMLEADADD", "15", eventsToken)); code != 200 {
		t.Fatalf("POST /events = %d, want 200", code)
	}
	if code, _ := post(t, srv, leadEvent("ONCRMLEADADD", "16", forged)); code != 403 {
		t.Fatalf("POST /events with a forged token = %d, want 403", code)
	}

	for _, msg := range []string{"http request", "request refused"} {
		for _, line := range buf.lines(t, msg) {
			if line["member_id"] != eventsMember || line["request_id"] == "" {
				t.Errorf("%q line = %v, want member_id %s and a request_id", msg, line,
					eventsMember)
			}
		}
	}
	if n := len(buf.lines(t, "http request")); n != 2 {
		t.Errorf("logged %d access lines, want 2: %s", n, buf)
	}
	if n := len(buf.lines(t, "request refused")); n != 1 {
		t.Errorf("logged %d refusals, want 1: %s", n, buf)
	}
	if s := buf.String(); strings.Contains(s, eventsToken) || strings.Contains(s, forged) {
		t.Errorf("the log holds an application token: %s", s)
	}
}

func TestSetMemberIgnoresOddValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "a223c6b3710f85df22e9377d6c4f7553", "a223c6b3710f85df22e9377d6c4f7553"},
		{"empty", "", ""},
		{"newline", "a\nb", ""},
		{"too long", strings.Repeat("a", 65), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			r := gin.New()
			r.Use(handlers.WithRequestID())
			r.GET("/", func(c *gin.Context) {
				handlers.SetMember(c, tt.in)
				got = handlers.MemberID(c.Request.Context())
			})
			r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
			if got != tt.want {
				t.Errorf("MemberID() after SetMember(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWithRequestIDs(t *testing.T) {
	t.Parallel()
	buf := &logBuffer{}
	log := slog.New(handlers.WithRequestIDs(slog.NewJSONHandler(buf, nil)))
	r := gin.New()
	r.Use(handlers.WithRequestID())
	r.GET("/", func(c *gin.Context) {
		ctx := c.Request.Context()
		log.InfoContext(ctx, "deep")
		log.InfoContext(ctx, "named", "request_id", handlers.RequestID(ctx))
		log.With("request_id", "other").InfoContext(ctx, "bound")
		log.Info("no context")
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(handlers.RequestIDHeader, "req-7")
	r.ServeHTTP(httptest.NewRecorder(), req)

	want := map[string]string{"deep": "req-7", "named": "req-7", "bound": "other",
		"no context": ""}
	for msg, id := range want {
		lines := buf.lines(t, msg)
		if len(lines) != 1 {
			t.Fatalf("%q logged %d times, want once", msg, len(lines))
		}
		if got, _ := lines[0]["request_id"].(string); got != id {
			t.Errorf("%q request_id = %q, want %q", msg, got, id)
		}
	}
	for raw := range strings.Lines(buf.String()) {
		if strings.Count(raw, `"request_id"`) > 1 {
			t.Errorf("request_id twice in %s", raw)
		}
	}
}
