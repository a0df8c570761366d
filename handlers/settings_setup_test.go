package handlers_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// ownWriteTTL is how soon after the app's own write an update of a lead is read
// again for a later change of owner; short, so tests need not wait long.
const ownWriteTTL = 50 * time.Millisecond

// sdkPath is where the test app serves the frame SDK installed from npm.
const sdkPath = "/test-sdk/b24jssdk.umd.js"

// stack is the whole application assembled from its real parts for one test:
// Redis, the fake portal server, the OAuth store, lifecycle, routing engine, the
// pipeline's and intake's workers, and every HTTP handler, on a loopback test server.
type stack struct {
	t      testing.TB
	fake   *bitrixtest.Server
	app    *httptest.Server
	store  *oauth.Store
	engine *routing.Engine
	queue  *queue.Queue
	intake *intake.Store
	posts  *intake.Service
	rdb    redis.UniversalClient
}

// sdkFile returns the UMD build of the frame SDK from e2e/node_modules, or "" when
// npm install has not run.
func sdkFile() string {
	p := filepath.Join("..", "e2e", "node_modules", "@bitrix24", "b24jssdk", "dist", "umd", "index.min.js")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("LEADROUTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startStack starts the application and a fake portal server; tune may change the
// OAuth store's configuration (a short session, say).
func startStack(t testing.TB, tune ...func(*oauth.Config)) *stack {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	log := testLogger(t)
	rdb := redistest.New(t)
	fake := bitrixtest.Start(t, bitrixtest.Options{Rate: -1, Logger: log})

	ts := httptest.NewUnstartedServer(nil)
	ts.Start()
	t.Cleanup(ts.Close)

	cfg := oauth.Config{ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		OAuthURL: fake.OAuthURL()}
	for _, f := range tune {
		f(&cfg)
	}
	store := oauth.NewStore(rdb, cfg, log)
	lc := lifecycle.New(rdb, store, lifecycle.Config{PublicURL: ts.URL}, log)
	engine := routing.NewEngine(rdb, log)
	q := queue.New(rdb, engine, store, log, queue.Config{Poll: 10 * time.Millisecond,
		RetryBase: 50 * time.Millisecond, HoldRetry: 200 * time.Millisecond, SweepEvery: -1,
		DirectoryTTL: time.Millisecond, OwnWriteTTL: ownWriteTTL})
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		t.Fatalf("start pipeline: %v", err)
	}
	t.Cleanup(func() {
		stop, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		q.Stop(stop)
		cancel()
	})
	a, err := assets.New()
	if err != nil {
		t.Fatalf("assets.New() = %v", err)
	}
	intakeStore := intake.NewStore(rdb)
	intakePosts := intake.New(rdb, func(m string) intake.Caller { return store.Client(m) },
		&intake.EngineRouter{Engine: engine, Clients: store.Client, RDB: rdb},
		// A post or a retry wakes the workers at once; the poll only catches retries
		// that fell due.
		intake.Config{PollInterval: 100 * time.Millisecond, BackoffBase: 20 * time.Millisecond,
			BackoffMax: 100 * time.Millisecond, ClaimIdle: 100 * time.Millisecond}, log)
	intakePosts.Start(ctx)
	t.Cleanup(func() { intakePosts.Stop(context.Background()) })

	sdkURL := handlers.DefaultSDKURL
	if sdkFile() != "" {
		sdkURL = sdkPath
	}
	r := gin.New()
	r.Use(handlers.WithRequestID())
	(&handlers.Install{Lifecycle: lc, Log: log, SDKURL: sdkURL}).Register(r)
	(&handlers.Events{Lifecycle: lc, Tokens: store, Queue: q, Log: log}).Register(r)
	handlers.NewSettings(handlers.SettingsConfig{
		Frames: store, Sessions: store.Sessions(), Portals: store, Engine: engine, Redis: rdb,
		Assets: a, Simulator: engine, Log: q, Health: q, Intake: intakeStore,
		IntakePosts: intakePosts, PublicURL: ts.URL, SDKURL: sdkURL,
	}, log).Register(r)
	(&handlers.Intake{Sources: intakeStore, Service: intakePosts, Portals: store,
		Log: log}).Register(r)
	if p := sdkFile(); p != "" {
		r.GET(sdkPath, func(c *gin.Context) {
			c.Header("Content-Type", "text/javascript; charset=utf-8")
			c.File(p)
		})
	}
	ts.Config.Handler = r
	return &stack{t: t, fake: fake, app: ts, store: store, engine: engine, queue: q,
		intake: intakeStore, posts: intakePosts, rdb: rdb}
}

// The people of the test portals.
var (
	anna   = bitrixtest.User{ID: 1, Name: "Anna", LastName: "Admin", Admin: true, Timeman: "OPENED"}
	boris  = bitrixtest.User{ID: 2, Name: "Boris", LastName: "Petrov", Timeman: "OPENED"}
	clara  = bitrixtest.User{ID: 3, Name: "Clara", LastName: "Schmidt", Timeman: "OPENED"}
	dmitri = bitrixtest.User{ID: 4, Name: "Dmitri", LastName: "Ivanov", Timeman: "OPENED"}
)

// newPortal creates a portal with the app registered on it (not yet installed).
func (s *stack) newPortal(lang string) *bitrixtest.Portal {
	s.t.Helper()
	p := s.fake.NewPortal(bitrixtest.PortalOptions{Lang: lang,
		Users: []bitrixtest.User{anna, boris, clara, dmitri}})
	p.RegisterApp(bitrixtest.App{InstallURL: s.app.URL + "/install", HandlerURL: s.app.URL + "/app"})
	return p
}

// install runs the install page as the portal opens it, finishes the installation
// as the frame SDK does, and waits until ONAPPINSTALL activated the portal.
func (s *stack) install(p *bitrixtest.Portal) {
	s.t.Helper()
	resp := s.openPage(p, anna.ID, "/install", "DEFAULT", nil)
	if resp.status != http.StatusOK {
		s.t.Fatalf("install page = %d: %s", resp.status, resp.body)
	}
	if err := p.FinishInstall(anna.ID); err != nil {
		s.t.Fatalf("FinishInstall() = %v", err)
	}
	s.waitActive(p)
}

// waitActive waits until the app's record of the portal is active.
func (s *stack) waitActive(p *bitrixtest.Portal) {
	s.t.Helper()
	waitFor(s.t, "portal active", func() bool {
		rec, err := s.store.Portal(context.Background(), p.MemberID())
		return err == nil && rec.Status == oauth.StatusActive
	})
}

// page is an app page as the frame received it.
type page struct {
	status int
	body   string
	header http.Header
}

// openPage POSTs what the portal's hidden form sends into the frame.
func (s *stack) openPage(p *bitrixtest.Portal, userID int, path, placement string,
	options map[string]any) page {
	s.t.Helper()
	query, body := p.OpenForm(userID, placement, options)
	resp, err := http.PostForm(s.app.URL+path+"?"+query.Encode(), body)
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, body: string(raw), header: resp.Header}
}

var configAttr = regexp.MustCompile(`data-config="([^"]*)"`)

// config returns the configuration the page hands its script.
func (pg page) config(t testing.TB) map[string]any {
	t.Helper()
	m := configAttr.FindStringSubmatch(pg.body)
	if m == nil {
		t.Fatalf("page has no data-config: %.300s", pg.body)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &cfg); err != nil {
		t.Fatalf("data-config is not JSON: %v", err)
	}
	return cfg
}

// session opens the settings page as userID and returns the page's session token.
func (s *stack) session(p *bitrixtest.Portal, userID int) string {
	s.t.Helper()
	pg := s.openPage(p, userID, "/app", "DEFAULT", nil)
	if pg.status != http.StatusOK {
		s.t.Fatalf("settings page for user %d = %d: %.300s", userID, pg.status, pg.body)
	}
	token, _ := pg.config(s.t)["token"].(string)
	if token == "" {
		s.t.Fatalf("settings page carries no session token")
	}
	return token
}

// call makes a settings API request with a session token and decodes the answer.
func (s *stack) call(token, method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		rd = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, s.app.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: answer is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// salesTeam is a small valid settings version: one team of Boris and Clara and a
// rule for web leads.
func salesTeam() *routing.Settings {
	return &routing.Settings{
		Scope: routing.Scope{Mode: routing.ScopeAll},
		Teams: []routing.Team{{ID: "sales", Name: "Sales", Strategy: routing.RoundRobin,
			Members: []routing.Member{{UserID: 2, Weight: 1}, {UserID: 3, Weight: 1}}}},
		Rules: []routing.Rule{{ID: "web", Name: "Web leads",
			Conditions: []routing.Condition{{Field: "SOURCE_ID", Op: routing.OpEquals, Value: "WEB"}},
			Target:     routing.Target{Kind: routing.TargetTeam, Team: "sales"}}},
		Default: routing.Target{Kind: routing.TargetTeam, Team: "sales"},
	}
}
