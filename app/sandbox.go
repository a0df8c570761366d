package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
)

// sandboxSDKFile is the frame SDK the browser tests install with npm; when it is
// there, the sandbox serves it itself and works without the internet.
const sandboxSDKFile = "e2e/node_modules/@bitrix24/b24jssdk/dist/umd/index.min.js"

// runSandbox runs the whole system on one machine with nothing to configure: an
// in-memory Redis (or REDIS_URL), the fake portal with a sample company, and
// LeadRouter installed into it through the real install flow.
func runSandbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "where the sandbox page and the fake portal listen")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	level := slog.LevelWarn
	if os.Getenv("LEADROUTER_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	sb, err := startSandbox(ctx, sandboxOptions{Addr: *addr, RedisURL: os.Getenv("REDIS_URL"), Log: log})
	if err != nil {
		return err
	}
	fmt.Printf("LeadRouter sandbox ready.\n\n")
	fmt.Printf("  open:           %s\n", sb.URL())
	fmt.Printf("  fake portal:    %s/portal/%s/\n", sb.fake.URL(), sb.portal.Name())
	fmt.Printf("  LeadRouter:     %s  (redis: %s)\n\n", sb.appURL, sb.redisName)
	fmt.Printf("Press Ctrl+C to stop.\n")
	<-ctx.Done()
	return sb.Close()
}

// sandboxOptions configure startSandbox.
type sandboxOptions struct {
	// Addr is where the fake portal and the sandbox page listen.
	Addr string
	// RedisURL is a real Redis to use; empty starts an in-memory one.
	RedisURL string
	Log      *slog.Logger
	// Rate and Burst are the fake portal's REST bucket (Bitrix24's standard plan when 0).
	Rate  float64
	Burst int
}

// sandbox is a running sandbox.
type sandbox struct {
	fake      *bitrixtest.Server
	portal    *bitrixtest.Portal
	app       *application
	appURL    string
	redisName string
	stop      func() error
	leads     *leadMaker
}

// URL returns the sandbox page: the portal with LeadRouter in its frame.
func (s *sandbox) URL() string { return s.fake.URL() + "/sandbox" }

// Close stops the sandbox.
func (s *sandbox) Close() error { return s.stop() }

func startSandbox(ctx context.Context, opts sandboxOptions) (sb *sandbox, err error) {
	var closers []func() error
	stop := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()

	rdb, redisName, closeRedis, err := sandboxRedis(opts.RedisURL)
	if err != nil {
		return nil, err
	}
	closers = append(closers, closeRedis)

	fake, err := bitrixtest.Listen(bitrixtest.Options{Addr: opts.Addr, Rate: opts.Rate, Burst: opts.Burst})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() error { fake.Close(); return nil })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	appURL := "http://" + ln.Addr().String()
	sdkURL := ""
	if _, err := os.Stat(sandboxSDKFile); err == nil {
		sdkURL = appURL + "/sandbox-sdk/b24jssdk.js"
	}
	app, err := newApplication(appConfig{
		PublicURL: appURL, ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		OAuthURL: fake.OAuthURL(), SDKURL: sdkURL,
		Queue:      queue.Config{Poll: 20 * time.Millisecond, HoldRetry: 10 * time.Second},
		IntakeWait: 2 * time.Second,
	}, rdb, opts.Log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", app.Handler())
	if sdkURL != "" {
		mux.HandleFunc("GET /sandbox-sdk/b24jssdk.js", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, sandboxSDKFile)
		})
	}
	app.handler = mux
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	quick := stopping{Timeout: 5 * time.Second} // no load balancer to drain
	go func() { done <- run(runCtx, opts.Log, ln, app, rdb, quick) }()
	closers = append(closers, func() error { cancel(); return <-done })

	portal := fake.NewPortal(sampleCompany())
	if err := sandboxInstall(ctx, app.store, portal, appURL); err != nil {
		return nil, fmt.Errorf("install LeadRouter into the sandbox portal: %w", err)
	}
	if _, err := app.engine.SaveSettings(ctx, portal.MemberID(), sampleSettings(), 1); err != nil {
		return nil, fmt.Errorf("save the sample settings: %w", err)
	}
	sb = &sandbox{fake: fake, portal: portal, app: app, appURL: appURL, redisName: redisName,
		stop: stop, leads: &leadMaker{portal: portal, rng: rand.New(rand.NewPCG(7, 11))}}
	sb.routes()
	return sb, nil
}

// sandboxRedis connects to url, or starts an in-memory Redis when url is empty.
func sandboxRedis(rawURL string) (redis.UniversalClient, string, func() error, error) {
	if rawURL != "" {
		opts, err := ParseRedisURL(rawURL)
		if err != nil {
			return nil, "", nil, &ConfigError{"REDIS_URL", err.Error()}
		}
		rdb := redis.NewUniversalClient(opts)
		return rdb, "REDIS_URL", func() error { return nil }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, "", nil, fmt.Errorf("start in-memory redis: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, "in memory", func() error { mr.Close(); return nil }, nil
}

// sandboxInstall installs LeadRouter into portal the way an administrator does:
// the portal opens the install page in its frame, the page binds events and
// placements, the frame SDK calls installFinish, and ONAPPINSTALL activates it.
func sandboxInstall(ctx context.Context, store *oauth.Store, portal *bitrixtest.Portal, appURL string) error {
	portal.RegisterApp(bitrixtest.App{InstallURL: appURL + "/install", HandlerURL: appURL + "/app"})
	query, body := portal.OpenForm(1, "DEFAULT", nil)
	resp, err := http.PostForm(appURL+"/install?"+query.Encode(), body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("install page answered %s", resp.Status)
	}
	if err := portal.FinishInstall(1); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p, err := store.Portal(ctx, portal.MemberID())
		if err == nil && p.Status == oauth.StatusActive {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("ONAPPINSTALL did not activate the portal in 10s")
}

// sandboxPage is the page that shows the portal with LeadRouter in its frame, the
// portal's lead list and the button that sends leads.
//
//go:embed sandbox/page.html
var sandboxPageHTML string

var sandboxPage = template.Must(template.New("sandbox").Parse(sandboxPageHTML))

// routes adds the sandbox page and its small JSON API to the fake portal's server.
func (s *sandbox) routes() {
	s.fake.Handle("GET /sandbox", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		lang := "en"
		if r.URL.Query().Get("lang") == "ru" {
			lang = "ru"
		}
		sandboxPage.Execute(w, map[string]any{
			"Frame":  s.portal.FrameURL(1) + "&lang=" + lang,
			"Portal": s.fake.URL() + "/portal/" + s.portal.Name() + "/",
			"Lang":   lang,
		})
	}))
	s.fake.Handle("POST /sandbox/leads", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.FormValue("count"))
		if err != nil || n < 1 || n > 500 {
			http.Error(w, "count must be a number from 1 to 500", http.StatusBadRequest)
			return
		}
		go s.leads.send(n, 150*time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	}))
	s.fake.Handle("GET /sandbox/leads", http.HandlerFunc(s.serveLeads))
}

// leadRow is one lead of the sandbox's lead list.
type leadRow struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Source      string `json:"source"`
	Amount      string `json:"amount"`
	Responsible string `json:"responsible"`
	Link        string `json:"link"`
}

// serveLeads lists the portal's newest leads with their responsible people.
func (s *sandbox) serveLeads(w http.ResponseWriter, r *http.Request) {
	names := map[string]string{}
	for _, u := range s.portal.Users() {
		names[strconv.Itoa(u.ID)] = u.Name + " " + u.LastName
	}
	leads := s.portal.Leads()
	rows := []leadRow{}
	for i := len(leads) - 1; i >= 0 && len(rows) < 50; i-- {
		l := leads[i]
		id := str(l["ID"])
		owner := "—"
		if by := str(l["ASSIGNED_BY_ID"]); by != "" && by != "1" {
			owner = names[by]
		}
		rows = append(rows, leadRow{ID: id, Title: str(l["TITLE"]), Source: str(l["SOURCE_ID"]),
			Amount: str(l["OPPORTUNITY"]) + " " + str(l["CURRENCY_ID"]), Responsible: owner,
			Link: s.portal.LeadFrameURL(1, atoi(id))})
	}
	writeJSON(w, map[string]any{"total": len(leads), "leads": rows,
		"pending": s.leads.pending()})
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// leadMaker creates realistic leads on the sandbox portal, as visitors, callers
// and imports would.
type leadMaker struct {
	portal *bitrixtest.Portal
	mu     sync.Mutex // guards rng and queued
	rng    *rand.Rand
	queued int
}

func (m *leadMaker) pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queued
}

// send creates n leads, one every gap.
func (m *leadMaker) send(n int, gap time.Duration) {
	m.mu.Lock()
	m.queued += n
	m.mu.Unlock()
	for range n {
		m.mu.Lock()
		fields := sampleLead(m.rng)
		m.queued--
		m.mu.Unlock()
		m.portal.AddLead(1, fields)
		time.Sleep(gap)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}
