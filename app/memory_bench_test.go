package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/queue"
)

// BenchmarkInstalledPortalMemory installs idle portals into the whole application
// the way an administrator does (install page, event and placement binding,
// installFinish, ONAPPINSTALL), lets the pipeline's sweep visit each of them once,
// and reports Redis used_memory per portal; the product's target is 4 KB. It
// complements oauth's BenchmarkIdlePortalMemory, which writes 10,000 portal
// records directly, by counting everything the running application keeps for a
// portal that has no leads yet.
func BenchmarkInstalledPortalMemory(b *testing.B) {
	const portals = 300
	gin.SetMode(gin.TestMode)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for b.Loop() {
		b.StopTimer()
		rdb := redistest.Start(b).Client(b)
		fake := bitrixtest.Start(b, bitrixtest.Options{Rate: -1, Logger: log})
		front := httptest.NewUnstartedServer(nil)
		b.Cleanup(front.Close)
		url := "http://" + front.Listener.Addr().String()
		app, err := newApplication(appConfig{PublicURL: url, ClientID: fake.ClientID(),
			ClientSecret: fake.ClientSecret(), OAuthURL: fake.OAuthURL(),
			Queue: queue.Config{SweepEvery: 500 * time.Millisecond}}, rdb, log)
		if err != nil {
			b.Fatal(err)
		}
		front.Config.Handler = app.Handler()
		front.Start()
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		if err := app.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { app.Stop(context.Background()) })

		// The first install loads the scripts and warms the server's buffers.
		installIdle(b, app, fake, url, "warm-up")
		time.Sleep(time.Second)
		before := usedMemory(b, rdb)
		b.StartTimer()
		for i := range portals {
			installIdle(b, app, fake, url, "portal "+strconv.Itoa(i))
		}
		b.StopTimer()
		time.Sleep(time.Second) // a sweep passes over every portal
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/portals, "bytes/portal")
		b.StartTimer()
	}
}

// installIdle creates a portal with one administrator and installs LeadRouter in it.
func installIdle(b *testing.B, app *application, fake *bitrixtest.Server, url, name string) {
	b.Helper()
	p := fake.NewPortal(bitrixtest.PortalOptions{Name: name,
		Users: []bitrixtest.User{{ID: 1, Name: "Admin", Admin: true}}})
	if err := sandboxInstall(context.Background(), app.store, p, url); err != nil {
		b.Fatalf("install %s: %v", name, err)
	}
}

// usedMemory returns the server's used_memory in bytes.
func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}
