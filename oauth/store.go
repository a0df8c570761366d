package oauth

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
)

// Config is what a Store needs. ClientID, ClientSecret and OAuthURL are required;
// zero values elsewhere pick the defaults named on each field.
type Config struct {
	// ClientID and ClientSecret are the application's OAuth credentials.
	ClientID     string
	ClientSecret string
	// OAuthURL is the OAuth server used when a portal names none, or names one
	// this package does not trust, e.g. "https://oauth.bitrix.info".
	OAuthURL string
	// TrustedOAuthURLs are further OAuth servers whose server_endpoint is accepted.
	// The configured OAuthURL and Bitrix24's own servers are always trusted.
	TrustedOAuthURLs []string
	// HTTPClient makes every request to portals and OAuth servers (nil: a client
	// with a 30 s timeout).
	HTTPClient *http.Client
	// Limiter keeps REST calls inside each portal's rate limit (nil: none).
	Limiter bitrix.Limiter
	// RESTTimeout bounds one REST request (0: the bitrix client's default).
	RESTTimeout time.Duration
	// LockTTL is how long one instance may hold a portal's refresh lock (0: 15 s).
	// A refresh request is cut off well before it.
	LockTTL time.Duration
	// LockPoll is how often an instance waiting for another one's refresh looks
	// at Redis again (0: 25 ms).
	LockPoll time.Duration
	// SessionTTL is the lifetime of a page session token (0: 1 h).
	SessionTTL time.Duration
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
}

// bitrixOAuthServers are Bitrix24's own OAuth servers, always trusted.
var bitrixOAuthServers = []string{"https://oauth.bitrix.info", "https://oauth.bitrix24.tech"}

// Store keeps portal records and tokens in Redis and hands out REST clients that
// refresh their tokens as the portal asks. It is safe for concurrent use; several
// Stores, in one process or many, may share one Redis.
type Store struct {
	rdb      redis.UniversalClient
	cfg      Config
	log      *slog.Logger
	http     *http.Client
	trusted  map[string]bool // origins of trusted OAuth servers
	flight   flight
	sessions *Sessions
}

// NewStore returns a Store on rdb. It does not touch Redis until used.
func NewStore(rdb redis.UniversalClient, cfg Config, log *slog.Logger) *Store {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 15 * time.Second
	}
	if cfg.LockPoll <= 0 {
		cfg.LockPoll = 25 * time.Millisecond
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.OAuthURL = strings.TrimRight(cfg.OAuthURL, "/")
	s := &Store{
		rdb:     rdb,
		cfg:     cfg,
		log:     log,
		http:    cfg.HTTPClient,
		trusted: map[string]bool{},
	}
	servers := append([]string{cfg.OAuthURL}, cfg.TrustedOAuthURLs...)
	for _, u := range append(servers, bitrixOAuthServers...) {
		if o := origin(u); o != "" {
			s.trusted[o] = true
		}
	}
	s.sessions = newSessions(cfg.ClientSecret, cfg.SessionTTL, cfg.Now)
	return s
}

// Sessions returns the issuer and checker of page session tokens, keyed from the
// client secret.
func (s *Store) Sessions() *Sessions { return s.sessions }

// Client returns a REST client that acts for the portal memberID with its install
// tokens. It is cheap; callers may make one per use.
func (s *Store) Client(memberID string) *bitrix.Client {
	return bitrix.NewClient(memberID, s.Auth(memberID), s.clientOptions())
}

func (s *Store) clientOptions() bitrix.Options {
	return bitrix.Options{
		HTTPClient: s.http,
		Limiter:    s.cfg.Limiter,
		Logger:     s.log,
		Timeout:    s.cfg.RESTTimeout,
	}
}

func (s *Store) now() time.Time { return s.cfg.Now() }
