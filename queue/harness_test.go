package queue_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// env is the whole pipeline on loopback: a real redis-server, the fake portal
// server, the token store, lifecycle, the routing engine and the /events receiver.
// Queue instances (the workers) are started and killed by each test.
type env struct {
	rdb    redis.UniversalClient
	fake   *bitrixtest.Server
	store  *oauth.Store
	engine *routing.Engine
	life   *lifecycle.Lifecycle
	app    *httptest.Server
	log    *slog.Logger
	// down makes the app refuse every request, as if no instance were running.
	down atomic.Bool
}

func newEnv(t testing.TB, fakeOpts bitrixtest.Options) *env {
	t.Helper()
	e := &env{log: slog.New(slog.DiscardHandler)}
	if os.Getenv("LEADROUTER_TEST_LOG") != "" {
		e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e.rdb = redistest.New(t)
	e.fake = bitrixtest.Start(t, fakeOpts)
	opts := fakeOpts
	if opts.ClientID == "" {
		opts.ClientID, opts.ClientSecret = "local.0123456789abcd.12345678", "secret"
	}
	e.store = oauth.NewStore(e.rdb, oauth.Config{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, OAuthURL: e.fake.OAuthURL(),
		Limiter: bitrix.NewRedisLimiter(e.rdb, max(opts.Rate, 2), max(opts.Burst, 50)),
	}, e.log)
	e.engine = routing.NewEngine(e.rdb, e.log)
	var h http.Handler
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.app.Close)
	e.life = lifecycle.New(e.rdb, e.store, lifecycle.Config{PublicURL: e.app.URL}, e.log)
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(gin.Recovery(), handlers.WithRequestID()) // as app wires them
	events := &handlers.Events{Lifecycle: e.life, Tokens: e.store, Log: e.log,
		Queue: queue.New(e.rdb, nil, nil, e.log, queue.Config{})}
	events.Register(r)
	h = r
	return e
}

// install creates a portal with an administrator (user 1) and reps 2..reps+1,
// installs the app on it through ONAPPINSTALL, waits for the event bindings and
// saves round-robin settings over the reps.
func (e *env) install(t testing.TB, name string, reps int) *bitrixtest.Portal {
	t.Helper()
	users := []bitrixtest.User{{ID: 1, Name: "Ada", LastName: "Admin", Admin: true}}
	team := routing.Team{ID: "sales", Name: "Sales", Strategy: routing.RoundRobin}
	for i := range reps {
		id := i + 2
		users = append(users, bitrixtest.User{ID: id, Name: fmt.Sprintf("Rep%d", id),
			LastName: "Sales", Timeman: "OPENED"})
		team.Members = append(team.Members, routing.Member{UserID: int64(id)})
	}
	p := e.fake.NewPortal(bitrixtest.PortalOptions{Name: name, Users: users})
	p.RegisterApp(bitrixtest.App{APIOnly: true, InstallURL: e.app.URL + "/events"})
	ctx := context.Background()
	waitFor(t, 10*time.Second, "portal "+name+" bound", func() bool {
		rec, err := e.store.Portal(ctx, p.MemberID())
		if err != nil || rec.Status != oauth.StatusActive {
			return false
		}
		events, _ := p.Bindings()
		return len(events) >= len(e.life.Events())
	})
	settings := &routing.Settings{
		Scope:   routing.Scope{Mode: routing.ScopeAll},
		Teams:   []routing.Team{team},
		Default: routing.Target{Kind: routing.TargetTeam, Team: "sales"},
	}
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), settings, 1); err != nil {
		t.Fatalf("SaveSettings() error = %v", err)
	}
	return p
}

// startQueue starts a worker instance; cancelling the returned context kills it
// (batches in flight are cut short and their entries left pending).
func (e *env) startQueue(t testing.TB, cfg queue.Config) (*queue.Queue, context.CancelFunc) {
	t.Helper()
	q := queue.New(e.rdb, e.engine, e.store, e.log, cfg)
	ctx, kill := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	t.Cleanup(func() {
		kill()
		q.Stop(context.Background())
	})
	return q, kill
}

// testConfig keeps every interval short so that a run takes seconds.
func testConfig(consumer string) queue.Config {
	return queue.Config{
		Consumer: consumer, Workers: 4, Lease: time.Second, Poll: 5 * time.Millisecond,
		RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, MaxAttempts: 30,
		HoldRetry: 200 * time.Millisecond, SweepEvery: 500 * time.Millisecond,
		ListEvery: 2 * time.Second,
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, ok func() bool, onFail ...func()) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			for _, f := range onFail {
				f()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unassigned counts the portal's leads still owned by their creator, the
// administrator (leads are created by user 1, who is in no team).
func unassigned(p *bitrixtest.Portal) int {
	n := 0
	for _, l := range p.Leads() {
		if fmt.Sprint(l["ASSIGNED_BY_ID"]) == "1" {
			n++
		}
	}
	return n
}

// clockedOut closes the working day of the given reps and has the team require
// clocking in, so that nobody is eligible and leads are held.
func (e *env) clockedOut(t testing.TB, p *bitrixtest.Portal, ids ...int) {
	t.Helper()
	for _, id := range ids {
		u, _ := p.User(id)
		u.Timeman = "CLOSED"
		p.UpdateUser(u)
	}
	ctx := context.Background()
	s, _, err := e.engine.Settings(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	s.Teams[0].RequireClockIn = true
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
		t.Fatal(err)
	}
}

// settler returns settle, which does act, then waits for n more event deliveries
// from the portal and for the pipeline to finish them.
func (e *env) settler(t *testing.T, p *bitrixtest.Portal) func(what string, n int, act func()) {
	ps := []*bitrixtest.Portal{p}
	return func(what string, n int, act func()) {
		t.Helper()
		n += len(p.Deliveries())
		act()
		waitFor(t, 10*time.Second, what, func() bool {
			return len(p.Deliveries()) >= n && depth(t, e, ps) == 0 &&
				pendingCount(t, e, ps) == 0
		})
	}
}
