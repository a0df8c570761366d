package main

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func validEnv() map[string]string {
	return map[string]string{
		"LEADROUTER_PUBLIC_URL": "https://leadrouter.example.com/",
		"B24_CLIENT_ID":         "local.6667fc928a50a9.70414732",
		"B24_CLIENT_SECRET":     "secret",
		"REDIS_URL":             "redis://127.0.0.1:6379/2",
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(env(validEnv()))
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	if c.PublicURL != "https://leadrouter.example.com" {
		t.Errorf("PublicURL = %q, want the URL without its trailing slash", c.PublicURL)
	}
	if c.Addr != ":8080" || c.OAuthURL != "https://oauth.bitrix.info" {
		t.Errorf("defaults: Addr = %q, OAuthURL = %q", c.Addr, c.OAuthURL)
	}
	if c.Redis.IsClusterMode || c.Redis.DB != 2 {
		t.Errorf("Redis = %+v, want a plain client on database 2", c.Redis)
	}
	if c.ShutdownTimeout != 20*time.Second {
		t.Errorf("ShutdownTimeout = %v, want 20s", c.ShutdownTimeout)
	}
	if c.DrainDelay != 5*time.Second {
		t.Errorf("DrainDelay = %v, want 5s", c.DrainDelay)
	}
}

func TestLoadConfigDrainDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"default", "", 5 * time.Second},
		{"none", "0", 0},
		{"longer", "30s", 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := validEnv()
			m["LEADROUTER_DRAIN_DELAY"] = tt.in
			c, err := LoadConfig(env(m))
			if err != nil {
				t.Fatalf("LoadConfig() error = %v", err)
			}
			if c.DrainDelay != tt.want {
				t.Errorf("DrainDelay = %v, want %v", c.DrainDelay, tt.want)
			}
		})
	}
}

func TestLoadConfigNamesTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		set     map[string]string
		wantVar string
	}{
		{"missing public URL", map[string]string{"LEADROUTER_PUBLIC_URL": ""}, "LEADROUTER_PUBLIC_URL"},
		{"plain http public URL", map[string]string{"LEADROUTER_PUBLIC_URL": "http://example.com"},
			"LEADROUTER_PUBLIC_URL"},
		{"relative public URL", map[string]string{"LEADROUTER_PUBLIC_URL": "/app"}, "LEADROUTER_PUBLIC_URL"},
		{"missing client id", map[string]string{"B24_CLIENT_ID": ""}, "B24_CLIENT_ID"},
		{"missing client secret", map[string]string{"B24_CLIENT_SECRET": ""}, "B24_CLIENT_SECRET"},
		{"missing redis", map[string]string{"REDIS_URL": ""}, "REDIS_URL"},
		{"bad redis scheme", map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{"cluster with a database", map[string]string{"REDIS_URL": "redis://a:1/3,redis://b:2/3"},
			"REDIS_URL"},
		{"bad address", map[string]string{"LEADROUTER_ADDR": "8080"}, "LEADROUTER_ADDR"},
		{"bad oauth URL", map[string]string{"B24_OAUTH_URL": "oauth.bitrix.info"}, "B24_OAUTH_URL"},
		{"bad log level", map[string]string{"LEADROUTER_LOG_LEVEL": "loud"}, "LEADROUTER_LOG_LEVEL"},
		{"bad shutdown timeout", map[string]string{"LEADROUTER_SHUTDOWN_TIMEOUT": "-1s"},
			"LEADROUTER_SHUTDOWN_TIMEOUT"},
		{"negative drain delay", map[string]string{"LEADROUTER_DRAIN_DELAY": "-5s"},
			"LEADROUTER_DRAIN_DELAY"},
		{"drain delay without a unit", map[string]string{"LEADROUTER_DRAIN_DELAY": "5"},
			"LEADROUTER_DRAIN_DELAY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := validEnv()
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := LoadConfig(env(m))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadConfig() error = %v, want a *ConfigError", err)
			}
			if ce.Var != tt.wantVar {
				t.Errorf("LoadConfig() names %s, want %s (%v)", ce.Var, tt.wantVar, err)
			}
		})
	}
}

func TestParseRedisURLCluster(t *testing.T) {
	t.Parallel()
	o, err := ParseRedisURL("redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7001")
	if err != nil {
		t.Fatalf("ParseRedisURL() error = %v", err)
	}
	if !o.IsClusterMode || o.Password != "pw" {
		t.Errorf("ParseRedisURL() = %+v, want cluster mode with the password", o)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:7000", "10.0.0.2:7001"}, o.Addrs); diff != "" {
		t.Errorf("Addrs mismatch (-want +got):\n%s", diff)
	}
}
