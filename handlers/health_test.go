package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

func init() { gin.SetMode(gin.TestMode) }

func TestHealthReadyFollowsRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	h := &Health{
		Log:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Redis: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
	}
	r := gin.New()
	r.Use(WithRequestID())
	h.Register(r)

	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w
	}
	if w := get("/healthz"); w.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", w.Code)
	}
	if w := get("/readyz"); w.Code != http.StatusOK {
		t.Errorf("GET /readyz with Redis up = %d, want 200", w.Code)
	}
	if w := get("/metrics"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "go_goroutines") {
		t.Errorf("GET /metrics = %d, want 200 with Go metrics", w.Code)
	}

	rdb.Shutdown(context.Background())
	w := get("/readyz")
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /readyz with Redis down = %d, want 503", w.Code)
	}
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	if body["error"] != "redis_unreachable" || body["request_id"] == "" {
		t.Errorf("GET /readyz body = %v, want error redis_unreachable and a request ID", body)
	}
}

func TestHandleHidesInternalErrors(t *testing.T) {
	t.Parallel()
	var logged strings.Builder
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	r := gin.New()
	r.Use(WithRequestID())
	r.GET("/boom", Handle(log, func(c *gin.Context) error {
		return errors.New("dial tcp 10.0.0.7:6379: secret detail")
	}))
	r.GET("/bad", Handle(log, func(c *gin.Context) error {
		return &Error{Status: http.StatusBadRequest, Code: "bad_input", Message: "Phone is not a number.",
			Fields: map[string]string{"phone": "not a number"}}
	}))

	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/boom", nil)
	req.Header.Set(RequestIDHeader, "abc-123")
	r.ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("GET /boom = %d, want 500", w.Code)
	}
	if strings.Contains(w.Body.String(), "secret detail") {
		t.Errorf("GET /boom body leaks the internal error: %s", w.Body)
	}
	if !strings.Contains(w.Body.String(), "abc-123") || !strings.Contains(logged.String(), "abc-123") {
		t.Errorf("request ID missing: body %s, log %s", w.Body, logged.String())
	}
	if !strings.Contains(logged.String(), "secret detail") {
		t.Errorf("log lacks the internal error: %s", logged.String())
	}

	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bad", nil))
	var body struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != http.StatusBadRequest || body.Error != "bad_input" || body.Fields["phone"] == "" {
		t.Errorf("GET /bad = %d %s, want 400 bad_input with the field", w.Code, w.Body)
	}
}

func TestRequestIDRejectsOddHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		keep bool
	}{
		{"plain", "req-42_a", true},
		{"empty", "", false},
		{"newline", "a\nb", false},
		{"too long", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := plainID(tt.in); got != tt.keep {
				t.Errorf("plainID(%q) = %v, want %v", tt.in, got, tt.keep)
			}
		})
	}
}
