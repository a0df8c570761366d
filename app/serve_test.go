package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

func init() { gin.SetMode(gin.TestMode) }

// TestServeRoutesAndStops runs the production wiring over a real redis-server:
// the app is installed into a fake portal, routes its leads, and on cancellation
// stops in order and returns without error, leaving Redis closed.
func TestServeRoutesAndStops(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rdb := redistest.New(t)
	fake := bitrixtest.Start(t, bitrixtest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	app, err := newApplication(appConfig{PublicURL: appURL, ClientID: fake.ClientID(),
		ClientSecret: fake.ClientSecret(), OAuthURL: fake.OAuthURL()}, rdb, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, log, ln, app, rdb, stopping{Timeout: 5 * time.Second}) }()

	portal := fake.NewPortal(sampleCompany())
	if err := sandboxInstall(ctx, app.store, portal, appURL); err != nil {
		t.Fatalf("install: %v", err)
	}
	if _, err := app.engine.SaveSettings(ctx, portal.MemberID(), sampleSettings(), 1); err != nil {
		t.Fatal(err)
	}
	var ids []int
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		f := sampleLead(rng)
		f["UF_CRM_REGION"] = "Germany"
		f["OPPORTUNITY"] = "100"
		f["TITLE"] = "Lead " + string(rune('A'+i))
		ids = append(ids, portal.AddLead(1, f))
	}
	waitFor(t, "every lead routed", func() bool {
		for _, id := range ids {
			l, _ := portal.Lead(id)
			if owner := str(l["ASSIGNED_BY_ID"]); owner == "1" || owner == "" {
				return false
			}
		}
		return true
	})
	if resp, err := http.Get(appURL + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /readyz = %v, %v; want 200 while serving", resp, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v, want a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not stop within 15s")
	}
	if err := rdb.Ping(context.Background()).Err(); err == nil {
		t.Errorf("Redis client still open after the stop")
	}
	if _, err := http.Get(appURL + "/healthz"); err == nil {
		t.Errorf("the HTTP server still answers after the stop")
	}
}

// TestServeDrainsBeforeStopping checks the drain: once stopped, the instance fails
// /readyz for the drain delay while it still answers requests, and only then closes
// its listener. Every request is in the access log.
func TestServeDrainsBeforeStopping(t *testing.T) {
	t.Parallel()
	var logged lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rdb := redistest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	app, err := newApplication(appConfig{PublicURL: appURL, ClientID: "app.1",
		ClientSecret: "secret", OAuthURL: "http://127.0.0.1:1"}, rdb, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const delay = time.Second
	go func() {
		done <- run(ctx, log, ln, app, rdb, stopping{DrainDelay: delay, Timeout: 5 * time.Second})
	}()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(path string) int {
		resp, err := client.Get(appURL + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "/readyz 200 while serving", func() bool { return status("/readyz") == 200 })

	stopped := time.Now()
	cancel()
	waitFor(t, "/readyz 503 once stopping", func() bool { return status("/readyz") == 503 })
	if got := status("/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz while draining = %d, want 200", got)
	}
	select {
	case err := <-done:
		t.Fatalf("run() = %v after %v, before the drain delay of %v", err,
			time.Since(stopped), delay)
	default:
	}

	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() = %v, want a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run() did not stop within 15s")
	}
	if took := time.Since(stopped); took < delay {
		t.Errorf("run() stopped %v after the signal, want at least the drain delay %v", took, delay)
	}
	if _, err := client.Get(appURL + "/healthz"); err == nil {
		t.Errorf("the HTTP server still answers after the stop")
	}
	if s := logged.String(); !strings.Contains(s, `"msg":"http request","method":"GET",`+
		`"route":"/readyz","status":503`) {
		t.Errorf("no access log line of a refused /readyz in:\n%s", s)
	}
}

// lockedBuffer is a bytes.Buffer that is safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
