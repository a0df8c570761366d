// Package lifecycle drives a portal through LeadRouter's installation: the install
// page, the binding of events and placements, the application events
// (ONAPPINSTALL, ONAPPUPDATE, ONAPPUNINSTALL) and a low-frequency sweep that
// finishes installs whose ONAPPINSTALL never came, binds again what failed to bind
// and keeps idle portals' refresh tokens alive.
//
// Every step is idempotent and safe in any order: ONAPPINSTALL may arrive before
// the install page is handled, after it, late, twice or never. Nothing a request
// carries is trusted until it is checked: the install page and a first
// ONAPPINSTALL with the OAuth server's app.info, later events with the stored
// application token, compared in constant time.
//
// The placements bound come from package placement (placement.Bound); the events
// are listed by Events. Start runs the sweep in the background every
// SweepInterval (one instance at a time, by a Redis lock) until Stop; Sweep runs
// one round. OnUninstall lets other parts stop their work for a portal and drop
// data they keep outside its keys.
//
// Bind returns a *BindReport (what is bound,
// what it added) besides the error, for the install page to show.
package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/oauth"
)

// Config is what a Lifecycle needs. PublicURL is required; zero values elsewhere
// pick the defaults named on each field.
type Config struct {
	// PublicURL is the https address the portal calls, without a trailing slash.
	PublicURL string
	// PendingAfter is how long a new install waits for ONAPPINSTALL before the
	// sweep asks the OAuth server whether it finished (0: 10 minutes).
	PendingAfter time.Duration
	// PendingGiveUp is how long the sweep keeps asking about an install that never
	// finished (0: 7 days).
	PendingGiveUp time.Duration
	// KeepAliveAge is how long a refresh token may go unused before the sweep
	// refreshes it (0: 25 days, safe under both the 28-day and the 180-day reading
	// of Bitrix24's documentation).
	KeepAliveAge time.Duration
	// SweepInterval is how often Run sweeps (0: 10 minutes).
	SweepInterval time.Duration
	// SweepBatch caps the portals one sweep step handles (0: 200).
	SweepBatch int64
	// BindTimeout bounds the binding done while handling an application event
	// (0: 20 s); what does not finish is bound again by the sweep.
	BindTimeout time.Duration
}

func (c *Config) defaults() {
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.PendingAfter, 10*time.Minute)
	set(&c.PendingGiveUp, 7*24*time.Hour)
	set(&c.KeepAliveAge, 25*24*time.Hour)
	set(&c.SweepInterval, 10*time.Minute)
	set(&c.BindTimeout, 20*time.Second)
	if c.SweepBatch <= 0 {
		c.SweepBatch = 200
	}
}

// UninstallHook is told that a portal was uninstalled, after its tokens are gone
// and before its data is removed (when clean), so that the part of the app that
// registered it can stop its work and drop data kept outside the portal's keys.
type UninstallHook func(ctx context.Context, memberID string, clean bool) error

// Lifecycle handles installs, application events and the sweep. It is safe for
// concurrent use.
type Lifecycle struct {
	rdb   redis.UniversalClient
	store *oauth.Store
	cfg   Config
	log   *slog.Logger

	mu    sync.Mutex // guards hooks
	hooks []UninstallHook

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a Lifecycle over store, keeping its own indexes in rdb.
func New(rdb redis.UniversalClient, store *oauth.Store, cfg Config, log *slog.Logger) *Lifecycle {
	cfg.defaults()
	return &Lifecycle{rdb: rdb, store: store, cfg: cfg, log: log}
}

// OnUninstall registers a hook called for every verified uninstall.
func (l *Lifecycle) OnUninstall(h UninstallHook) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hooks = append(l.hooks, h)
}

func (l *Lifecycle) uninstallHooks() []UninstallHook {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]UninstallHook(nil), l.hooks...)
}

// Errors of install pages and application events. Callers map them to responses:
// ErrNotAdmin and oauth.ErrForbidden to 403, oauth.ErrBadFrame and
// ErrNotAppEvent to 400.
var (
	// ErrNotAdmin is returned when the install page is opened by a user who is not
	// a portal administrator.
	ErrNotAdmin = errors.New("only a portal administrator can install the application")
	// ErrNotAppEvent is returned by HandleAppEvent for an event it does not handle.
	ErrNotAppEvent = errors.New("not an application lifecycle event")
)
