package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
)

const (
	eventsMember = "a223c6b3710f85df22e9377d6c4f7553"
	eventsToken  = "51856fefc120afa4b628cc82d3935cce"
)

// eventsSetup starts Redis, stores one active portal and serves /events with the
// real token store and queue. queueRedis, when set, replaces the queue's Redis.
func eventsSetup(t *testing.T, queueRedis redis.UniversalClient) (*httptest.Server, *redis.Client) {
	t.Helper()
	return eventsSetupWith(t, queueRedis, func(*handlers.Events, *oauth.Store, *redis.Client) {})
}

// eventsSetupWith is eventsSetup with a last change to the handler, which may use
// the portal's token store and Redis.
func eventsSetupWith(t *testing.T, queueRedis redis.UniversalClient,
	tweak func(*handlers.Events, *oauth.Store, *redis.Client)) (*httptest.Server, *redis.Client) {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	log := slog.New(slog.DiscardHandler)
	store := eventsPortal(t, rdb, log)
	if queueRedis == nil {
		queueRedis = rdb
	}
	q := queue.New(queueRedis, nil, nil, log, queue.Config{})
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(handlers.WithRequestID())
	h := &handlers.Events{Tokens: store, Queue: q, Log: log, MaxBody: 4 << 10,
		AttemptTimeout: 50 * time.Millisecond}
	tweak(h, store, rdb)
	h.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, rdb
}

// eventsPortal returns a token store on rdb that holds eventsMember as an active
// portal with the application token eventsToken.
func eventsPortal(t *testing.T, rdb redis.UniversalClient, log *slog.Logger) *oauth.Store {
	t.Helper()
	store := oauth.NewStore(rdb, oauth.Config{ClientID: "local.app", ClientSecret: "s"}, log)
	_, _, err := store.Activate(context.Background(), oauth.Activation{
		MemberID: eventsMember, ApplicationToken: eventsToken, Domain: "example.bitrix24.com",
		ClientEndpoint: "https://example.bitrix24.com/rest/",
		ServerEndpoint: "https://oauth.bitrix.info/rest/",
		Tokens: oauth.Tokens{AccessToken: "a", RefreshToken: "r",
			Expiry: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("Activate() error = %v", err)
	}
	return store
}

func leadEvent(name, lead, token string) string {
	v := url.Values{
		"event": {name}, "event_handler_id": {"7"}, "ts": {"1742807175"},
		"data[FIELDS][ID]": {lead}, "auth[member_id]": {eventsMember},
		"auth[domain]": {"example.bitrix24.com"}, "auth[application_token]": {token},
	}
	return v.Encode()
}

func post(t *testing.T, srv *httptest.Server, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/events", "application/x-www-form-urlencoded",
		strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /events: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEventsReceive(t *testing.T) {
	t.Parallel()
	srv, rdb := eventsSetup(t, nil)
	tests := []struct {
		name    string
		body    string
		status  int
		outcome string
		queued  int64 // stream length after the request
	}{
		{name: "lead add", body: leadEvent("ONCRMLEADADD", "15", eventsToken),
			status: 200, outcome: "enqueued", queued: 1},
		{name: "lead update", body: leadEvent("ONCRMLEADUPDATE", "15", eventsToken),
			status: 200, outcome: "enqueued", queued: 2},
		{name: "lead delete is accepted and dropped",
			body:   leadEvent("ONCRMLEADDELETE", "15", eventsToken),
			status: 200, outcome: "ignored", queued: 2},
		{name: "forged token", body: leadEvent("ONCRMLEADADD", "16", "0123456789abcdef0123456789abcdef"),
			status: 403, outcome: "forbidden", queued: 2},
		{name: "unknown portal", body: strings.Replace(leadEvent("ONCRMLEADADD", "16", eventsToken),
			eventsMember, "00000000000000000000000000000000", 1),
			status: 403, outcome: "forbidden", queued: 2},
		{name: "unknown event", body: leadEvent("ONCRMDEALADD", "16", eventsToken),
			status: 400, outcome: "unknown_event", queued: 2},
		{name: "no lead ID", body: leadEvent("ONCRMLEADADD", "", eventsToken),
			status: 400, outcome: "malformed", queued: 2},
		{name: "broken brackets", body: "event=ONCRMLEADADD&auth%5Bmember_id=x",
			status: 400, outcome: "malformed", queued: 2},
		{name: "bad escape", body: "event=%zz", status: 400, outcome: "malformed", queued: 2},
		{name: "oversize", body: leadEvent("ONCRMLEADADD", "17", eventsToken) + "&pad=" +
			strings.Repeat("x", 5<<10), status: 413, outcome: "oversize", queued: 2},
	}
	// Cases run in order: each checks the stream length the earlier ones left.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := counted(tt.outcome)
			status, body := post(t, srv, tt.body)
			if status != tt.status {
				t.Errorf("POST /events = %d %s, want %d", status, body, tt.status)
			}
			if status >= 400 && !strings.Contains(body, `"message"`) {
				t.Errorf("POST /events body %s has no message", body)
			}
			after := counted(tt.outcome)
			if after < before+1 {
				t.Errorf("outcome %q counted %v → %v, want one more", tt.outcome, before, after)
			}
			n, err := rdb.XLen(context.Background(), keyspace.EventStream(eventsMember)).Result()
			if err != nil || n != tt.queued {
				t.Errorf("stream length = %d (%v), want %d", n, err, tt.queued)
			}
		})
	}
}

func TestEventsRedisDown(t *testing.T) {
	t.Parallel()
	// The queue's Redis is a real server that has gone away.
	gone := redistest.Start(t)
	down := redis.NewClient(&redis.Options{Addr: gone.Addr, MaxRetries: -1})
	t.Cleanup(func() { down.Close() })
	if err := down.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err(); err == nil {
		t.Fatal("SHUTDOWN returned no error; the server is still up")
	}
	srv, _ := eventsSetup(t, down)
	before := counted("unavailable")
	status, body := post(t, srv, leadEvent("ONCRMLEADADD", "15", eventsToken))
	if status != http.StatusServiceUnavailable {
		t.Errorf("POST /events with Redis down = %d %s, want 503", status, body)
	}
	if after := counted("unavailable"); after < before+1 {
		t.Errorf("unavailable counted %v → %v, want one more", before, after)
	}
}

func TestEventsRedisBrieflySlow(t *testing.T) {
	t.Parallel()
	srv, rdb := eventsSetupWith(t, nil, func(h *handlers.Events, _ *oauth.Store, _ *redis.Client) { h.Attempts = 20 })
	ctx := context.Background()
	// Warm the token check, then hold every write for 300 ms: the first appends time
	// out, a later one lands.
	if status, body := post(t, srv, leadEvent("ONCRMLEADADD", "1", eventsToken)); status != 200 {
		t.Fatalf("POST /events = %d %s, want 200", status, body)
	}
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "300", "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	start := time.Now()
	status, body := post(t, srv, leadEvent("ONCRMLEADADD", "2", eventsToken))
	if status != http.StatusOK {
		t.Fatalf("POST /events while Redis is slow = %d %s, want 200", status, body)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("POST /events answered after %v, before the pause ended", waited)
	}
	// An append that timed out on our side may still run once Redis resumes: the
	// event is then queued twice, which the workers' per-lead merge absorbs.
	msgs, err := rdb.XRange(ctx, keyspace.EventStream(eventsMember), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range msgs {
		found = found || m.Values["lead"] == "2"
	}
	if !found {
		t.Errorf("stream %v holds no entry for lead 2", msgs)
	}
}

// counted returns how many events were counted with outcome so far.
func counted(outcome string) float64 {
	var m dto.Metric
	queue.EventsIn.WithLabelValues(outcome).Write(&m)
	return m.GetCounter().GetValue()
}

// TestEventsNotAForm checks that a body sent as anything but a form is refused as
// malformed and stores nothing, even when its text would read as a valid event.
func TestEventsNotAForm(t *testing.T) {
	t.Parallel()
	srv, rdb := eventsSetup(t, nil)
	before := counted("malformed")
	resp, err := http.Post(srv.URL+"/events", "text/plain",
		strings.NewReader(leadEvent("ONCRMLEADADD", "15", eventsToken)))
	if err != nil {
		t.Fatalf("POST /events: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST /events as text/plain = %d, want 400", resp.StatusCode)
	}
	if after := counted("malformed"); after < before+1 {
		t.Errorf("outcome malformed counted %v → %v, want one more", before, after)
	}
	n, err := rdb.XLen(context.Background(), keyspace.EventStream(eventsMember)).Result()
	if err != nil || n != 0 {
		t.Errorf("stream length = %d (%v), want 0", n, err)
	}
}

// TestEventsRefusedRightAfterUninstall checks that an instance which has just
// trusted a portal's token refuses the portal's lead events once it uninstalled,
// without waiting for its trust in the token to run out.
func TestEventsRefusedRightAfterUninstall(t *testing.T) {
	t.Parallel()
	srv, rdb := eventsSetupWith(t, nil, func(h *handlers.Events, store *oauth.Store,
		rdb *redis.Client) {
		h.TokenCache = time.Hour
		h.Lifecycle = lifecycle.New(rdb, store, lifecycle.Config{
			PublicURL: "https://leadrouter.example"}, slog.New(slog.DiscardHandler))
	})
	if status, body := post(t, srv, leadEvent("ONCRMLEADADD", "15", eventsToken)); status != 200 {
		t.Fatalf("lead event before uninstall = %d %s, want 200", status, body)
	}
	uninstall := url.Values{
		"event": {"ONAPPUNINSTALL"}, "event_handler_id": {"3"}, "ts": {"1742807175"},
		"data[CLEAN]": {"0"}, "data[LANGUAGE_ID]": {"en"}, "auth[member_id]": {eventsMember},
		"auth[domain]": {"example.bitrix24.com"}, "auth[application_token]": {eventsToken},
	}
	if status, body := post(t, srv, uninstall.Encode()); status != 200 {
		t.Fatalf("ONAPPUNINSTALL = %d %s, want 200", status, body)
	}
	if status, body := post(t, srv, leadEvent("ONCRMLEADADD", "16", eventsToken)); status != 403 {
		t.Errorf("lead event after uninstall = %d %s, want 403", status, body)
	}
	n, err := rdb.XLen(context.Background(), keyspace.EventStream(eventsMember)).Result()
	if err != nil || n != 1 {
		t.Errorf("stream length = %d (%v), want 1: only the event from before the uninstall", n, err)
	}
}
