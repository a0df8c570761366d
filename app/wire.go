package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// appConfig is what assembling LeadRouter needs beyond Redis and a logger.
type appConfig struct {
	PublicURL    string
	ClientID     string
	ClientSecret string
	OAuthURL     string
	// TrustedOAuthURLs are further OAuth servers portals may name (the sandbox's
	// fake one).
	TrustedOAuthURLs []string
	SDKURL           string
	// Rate and Burst are the portals' REST bucket (Bitrix24's standard plan when 0).
	Rate  float64
	Burst int
	// Queue and Intake tune the workers; zero values are production defaults.
	Queue  queue.Config
	Intake intake.Config
	// Lifecycle tunes the install sweep; PublicURL is filled in.
	Lifecycle lifecycle.Config
	// IntakeWait is how long an intake post waits for its lead before a 202.
	IntakeWait time.Duration
}

// application is LeadRouter assembled from its parts: the HTTP surface and the
// background workers, over one Redis.
type application struct {
	log      *slog.Logger
	rdb      redis.UniversalClient
	store    *oauth.Store
	life     *lifecycle.Lifecycle
	engine   *routing.Engine
	queue    *queue.Queue
	intake   *intake.Service
	sources  *intake.Store
	handler  http.Handler
	draining atomic.Bool
}

// newApplication builds every part of LeadRouter explicitly; nothing starts until
// Start.
func newApplication(cfg appConfig, rdb redis.UniversalClient, log *slog.Logger) (*application, error) {
	rate, burst := cfg.Rate, cfg.Burst
	if rate == 0 {
		rate, burst = bitrix.StandardLimit.Rate, bitrix.StandardLimit.Burst
	}
	store := oauth.NewStore(rdb, oauth.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, OAuthURL: cfg.OAuthURL,
		TrustedOAuthURLs: cfg.TrustedOAuthURLs,
		Limiter:          bitrix.NewRedisLimiter(rdb, rate, burst),
	}, log)
	lcfg := cfg.Lifecycle
	lcfg.PublicURL = cfg.PublicURL
	life := lifecycle.New(rdb, store, lcfg, log)
	engine := routing.NewEngine(rdb, log)
	q := queue.New(rdb, engine, store, log, cfg.Queue)
	life.OnUninstall(q.Forget)
	clients := store.Client
	router := &intake.EngineRouter{Engine: engine, Clients: clients, RDB: rdb,
		Lang: func(ctx context.Context, memberID string) string {
			p, err := store.Portal(ctx, memberID)
			if err != nil {
				return "en"
			}
			return p.Lang
		}}
	svc := intake.New(rdb, func(m string) intake.Caller { return clients(m) }, router, cfg.Intake, log)
	life.OnUninstall(svc.Forget)
	sources := intake.NewStore(rdb)
	a := &application{log: log, rdb: rdb, store: store, life: life, engine: engine, queue: q,
		intake: svc, sources: sources}

	pages, err := assets.New()
	if err != nil {
		return nil, err
	}
	r := gin.New()
	// Recovery comes after the access log, so that a request that panicked is
	// logged with the 500 it was answered.
	r.Use(handlers.WithRequestID(), handlers.AccessLog(log), gin.Recovery())
	(&handlers.Health{Log: log, Redis: pingRedis(rdb), Draining: a.draining.Load}).Register(r)
	(&handlers.Install{Lifecycle: life, Log: log, SDKURL: cfg.SDKURL}).Register(r)
	(&handlers.Events{Lifecycle: life, Tokens: store, Queue: q, Log: log}).Register(r)
	handlers.NewSettings(handlers.SettingsConfig{
		Frames: store, Sessions: store.Sessions(), Portals: store, Engine: engine, Redis: rdb,
		Assets: pages, Simulator: engine, Log: q, Health: q, Intake: sources, IntakePosts: svc,
		PublicURL: cfg.PublicURL, SDKURL: cfg.SDKURL,
	}, log).Register(r)
	(&handlers.Intake{Sources: sources, Service: svc, Portals: store, Log: log,
		Wait: cfg.IntakeWait}).Register(r)
	a.handler = r
	return a, nil
}

// pingRedis returns the readiness check of rdb: the server answers PING, or, on a
// cluster, every master does (a plain PING there reaches one node at random, and a
// portal whose slot lives on a lost master cannot be served).
func pingRedis(rdb redis.UniversalClient) func(context.Context) error {
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	return func(ctx context.Context) error {
		return cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	}
}

// Handler returns the HTTP surface.
func (a *application) Handler() http.Handler { return a.handler }

// Start starts the background work: the pipeline's workers, the intake workers and
// the lifecycle sweep.
func (a *application) Start(ctx context.Context) error {
	if err := a.queue.Start(ctx); err != nil {
		return err
	}
	a.intake.Start(ctx)
	a.life.Start(ctx)
	return nil
}

// Drain makes /readyz fail so that load balancers stop sending requests.
func (a *application) Drain() { a.draining.Store(true) }

// Stop stops the background work in order: first nothing new is taken from the
// streams, then in-flight leads finish (each within ctx), then the sweep stops.
// Redis is closed by the caller, last.
func (a *application) Stop(ctx context.Context) error {
	return errors.Join(
		a.queue.Stop(ctx),
		a.intake.Stop(ctx),
		a.life.Stop(ctx),
	)
}
