package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// runServe runs LeadRouter for real: configuration from the environment, one HTTP
// listener, the workers, until SIGINT or SIGTERM.
func runServe(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("serve takes no arguments; it is configured from the environment")
	}
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	log := newLogger(cfg.LogLevel)
	rdb := redis.NewUniversalClient(cfg.Redis)
	app, err := newApplication(appConfig{
		PublicURL: cfg.PublicURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		OAuthURL: cfg.OAuthURL, SDKURL: cfg.SDKURL,
		IntakeWait: 2 * time.Second,
	}, rdb, log)
	if err != nil {
		rdb.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		rdb.Close()
		return err
	}
	log.Info("leadrouter starting", "addr", ln.Addr().String(), "public_url", cfg.PublicURL)
	return run(ctx, log, ln, app, rdb, stopping{DrainDelay: cfg.DrainDelay,
		Timeout: cfg.ShutdownTimeout})
}

// stopping is how run stops LeadRouter once its context ends.
type stopping struct {
	// DrainDelay is how long /readyz fails while requests are still served, before
	// the HTTP server stops accepting them; zero skips the wait.
	DrainDelay time.Duration
	// Timeout bounds each step after the drain.
	Timeout time.Duration
}

// run serves app on ln and runs its workers until ctx ends, then stops everything
// in a fixed order, each step after the drain with its own timeout:
//
//  0. /readyz fails for the drain delay while requests are still served, so that
//     load balancers take the instance out before it stops listening.
//  1. The HTTP server stops accepting requests, finishing the ones in flight;
//     events are acknowledged only once stored, so none is lost.
//  2. The workers stop taking entries from the streams and finish the leads they
//     hold; what they cannot finish stays pending and another instance claims it.
//  3. Redis is closed last, once nothing uses it.
func run(ctx context.Context, log *slog.Logger, ln net.Listener, app *application,
	rdb redis.UniversalClient, stop stopping) error {
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	if err := app.Start(workCtx); err != nil {
		rdb.Close()
		return err
	}
	srv := newServer(app.Handler(), log)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("leadrouter ready", "addr", ln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	log.Info("leadrouter stopping", "drain_delay", stop.DrainDelay.String())

	app.Drain()
	if serveErr == nil {
		drain(srv, stop.DrainDelay)
	}
	httpCtx, cancel := context.WithTimeout(context.Background(), stop.Timeout)
	if err := srv.Shutdown(httpCtx); err != nil {
		log.Warn("http server did not stop in time", "error", err)
	}
	cancel()

	workerCtx, cancel := context.WithTimeout(context.Background(), stop.Timeout)
	if err := app.Stop(workerCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("workers did not stop cleanly", "error", err)
	}
	cancel()
	stopWork()

	if err := rdb.Close(); err != nil {
		log.Warn("close redis", "error", err)
	}
	log.Info("leadrouter stopped")
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// newServer returns the HTTP server of h, with timeouts for slow or idle clients.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// drain keeps srv serving for delay while /readyz fails. Connections are closed
// after their current request, so that a load balancer's next request opens one it
// can send to another instance.
func drain(srv *http.Server, delay time.Duration) {
	if delay <= 0 {
		return
	}
	srv.SetKeepAlivesEnabled(false)
	time.Sleep(delay)
}
