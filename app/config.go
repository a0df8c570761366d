package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/handlers"
)

// Config is everything `serve` reads from the environment. It is read once at start,
// validated, and passed down; nothing else reads the environment.
type Config struct {
	// Addr is where the HTTP server listens (LEADROUTER_ADDR, default ":8080").
	Addr string
	// PublicURL is the https address the portal calls (LEADROUTER_PUBLIC_URL), without
	// a trailing slash.
	PublicURL string
	// ClientID and ClientSecret are the application's OAuth credentials from the
	// portal's local application form or the marketplace (B24_CLIENT_ID,
	// B24_CLIENT_SECRET).
	ClientID     string
	ClientSecret string
	// Redis holds the parsed REDIS_URL: one redis:// URL, or several comma-separated
	// cluster nodes.
	Redis *redis.UniversalOptions
	// OAuthURL is the Bitrix24 OAuth server used when a portal names none
	// (B24_OAUTH_URL, default https://oauth.bitrix.info).
	OAuthURL string
	// SDKURL is where pages load the Bitrix24 frame SDK from (LEADROUTER_SDK_URL).
	SDKURL string
	// LogLevel is the lowest level logged (LEADROUTER_LOG_LEVEL: debug, info, warn,
	// error; default info).
	LogLevel slog.Level
	// ShutdownTimeout bounds each step of a graceful stop
	// (LEADROUTER_SHUTDOWN_TIMEOUT, default 20s).
	ShutdownTimeout time.Duration
	// DrainDelay is how long a stopping instance fails /readyz while it still
	// serves requests, so that load balancers stop sending it traffic first
	// (LEADROUTER_DRAIN_DELAY, default 5s; 0 stops at once).
	DrainDelay time.Duration
}

// ConfigError names the environment variable that stopped the start.
type ConfigError struct {
	Var    string
	Reason string
}

func (e *ConfigError) Error() string { return e.Var + ": " + e.Reason }

// LoadConfig reads and validates the configuration through getenv (os.Getenv in
// production). The first problem found is returned as a *ConfigError.
func LoadConfig(getenv func(string) string) (*Config, error) {
	c := &Config{
		Addr:            or(getenv("LEADROUTER_ADDR"), ":8080"),
		PublicURL:       strings.TrimRight(getenv("LEADROUTER_PUBLIC_URL"), "/"),
		ClientID:        getenv("B24_CLIENT_ID"),
		ClientSecret:    getenv("B24_CLIENT_SECRET"),
		OAuthURL:        strings.TrimRight(or(getenv("B24_OAUTH_URL"), "https://oauth.bitrix.info"), "/"),
		SDKURL:          or(getenv("LEADROUTER_SDK_URL"), handlers.DefaultSDKURL),
		ShutdownTimeout: 20 * time.Second,
		DrainDelay:      5 * time.Second,
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, &ConfigError{"LEADROUTER_ADDR", "want host:port or :port, got " + quote(c.Addr)}
	}
	if err := checkURL(c.PublicURL, true); err != nil {
		return nil, &ConfigError{"LEADROUTER_PUBLIC_URL", err.Error()}
	}
	if c.ClientID == "" {
		return nil, &ConfigError{"B24_CLIENT_ID", "is required: the application's client_id"}
	}
	if c.ClientSecret == "" {
		return nil, &ConfigError{"B24_CLIENT_SECRET", "is required: the application's client_secret"}
	}
	opts, err := ParseRedisURL(getenv("REDIS_URL"))
	if err != nil {
		return nil, &ConfigError{"REDIS_URL", err.Error()}
	}
	c.Redis = opts
	if err := checkURL(c.OAuthURL, false); err != nil {
		return nil, &ConfigError{"B24_OAUTH_URL", err.Error()}
	}
	if err := checkURL(c.SDKURL, false); err != nil {
		return nil, &ConfigError{"LEADROUTER_SDK_URL", err.Error()}
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("LEADROUTER_LOG_LEVEL"), "info"))); err != nil {
		return nil, &ConfigError{"LEADROUTER_LOG_LEVEL", "want debug, info, warn or error"}
	}
	if s := getenv("LEADROUTER_SHUTDOWN_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, &ConfigError{"LEADROUTER_SHUTDOWN_TIMEOUT", "want a positive duration such as 20s"}
		}
		c.ShutdownTimeout = d
	}
	if s := getenv("LEADROUTER_DRAIN_DELAY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return nil, &ConfigError{"LEADROUTER_DRAIN_DELAY", "want a duration such as 5s, or 0"}
		}
		c.DrainDelay = d
	}
	return c, nil
}

// ParseRedisURL parses REDIS_URL: a single redis:// or rediss:// URL gives a plain
// client; two or more comma-separated URLs give a cluster client over those nodes.
func ParseRedisURL(s string) (*redis.UniversalOptions, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("is required: a redis:// URL, or comma-separated cluster node URLs")
	}
	var parsed []*redis.Options
	for part := range strings.SplitSeq(s, ",") {
		o, err := redis.ParseURL(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", quote(part), err)
		}
		parsed = append(parsed, o)
	}
	first := parsed[0]
	u := &redis.UniversalOptions{
		Username:  first.Username,
		Password:  first.Password,
		DB:        first.DB,
		TLSConfig: first.TLSConfig,
	}
	for _, o := range parsed {
		u.Addrs = append(u.Addrs, o.Addr)
	}
	if len(parsed) > 1 {
		if first.DB != 0 {
			return nil, errors.New("a cluster has only database 0; drop the /N path")
		}
		u.IsClusterMode = true
	}
	return u, nil
}

func checkURL(s string, needHTTPS bool) error {
	if s == "" {
		return errors.New("is required: the https address portals use to reach LeadRouter")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("want an absolute http(s) URL, got %s", quote(s))
	}
	if needHTTPS && u.Scheme != "https" && !loopback(u.Hostname()) {
		return fmt.Errorf("Bitrix24 calls applications over https only, got %s", quote(s))
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
