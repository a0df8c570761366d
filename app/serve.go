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
	return run(ctx, log, ln, app, rdb, cfg.ShutdownTimeout)
}

// run serves app on ln and runs its workers until ctx ends, then stops everything
// in a fixed order, each step with its own timeout:
//
//  1. /readyz fails and the HTTP server stops accepting requests, finishing the
//     ones in flight; events are acknowledged only once stored, so none is lost.
//  2. The workers stop taking entries from the streams and finish the leads they
//     hold; what they cannot finish stays pending and another instance claims it.
//  3. Redis is closed last, once nothing uses it.
func run(ctx context.Context, log *slog.Logger, ln net.Listener, app *application,
	rdb redis.UniversalClient, timeout time.Duration) error {
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	if err := app.Start(workCtx); err != nil {
		rdb.Close()
		return err
	}
	srv := &http.Server{
		Handler:           app.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("leadrouter ready", "addr", ln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	log.Info("leadrouter stopping")

	app.Drain()
	httpCtx, cancel := context.WithTimeout(context.Background(), timeout)
	if err := srv.Shutdown(httpCtx); err != nil {
		log.Warn("http server did not stop in time", "error", err)
	}
	cancel()

	workerCtx, cancel := context.WithTimeout(context.Background(), timeout)
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
