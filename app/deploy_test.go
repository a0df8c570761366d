package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml the way `docker compose config` does:
// schema validation, interpolation and the model, with the variables an operator
// sets in .env.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"LEADROUTER_PUBLIC_URL": "https://leadrouter.example.com",
		"B24_CLIENT_ID":         "local.6667fc928a50a9.70414732",
		"B24_CLIENT_SECRET":     "secret",
	}
	details := types.ConfigDetails{
		WorkingDir:  "..",
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: b}},
		Environment: env,
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("leadrouter", true)
	})
	if err != nil {
		t.Fatalf("compose file does not load: %v", err)
	}
	app, err := p.GetService("app")
	if err != nil {
		t.Fatal(err)
	}
	if app.Build == nil || app.Build.Context == "" {
		t.Error("app is not built from the repository")
	}
	if app.HealthCheck == nil || app.Restart == "" {
		t.Errorf("app needs a health check and a restart policy, got %+v, %q", app.HealthCheck, app.Restart)
	}
	if got := *app.Environment["REDIS_URL"]; got != "redis://redis:6379/0" {
		t.Errorf("app REDIS_URL = %q", got)
	}
	redis, err := p.GetService("redis")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") {
		t.Errorf("redis command = %v, want AOF on", redis.Command)
	}
	if len(redis.Volumes) == 0 || redis.Volumes[0].Target != "/data" {
		t.Errorf("redis volumes = %+v, want a volume on /data", redis.Volumes)
	}

	delete(env, "B24_CLIENT_SECRET")
	if _, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("leadrouter", true)
	}); err == nil || !strings.Contains(err.Error(), "B24_CLIENT_SECRET") {
		t.Errorf("without B24_CLIENT_SECRET the file loads with error %v, want one naming it", err)
	}
}

// TestDockerfile checks the image is built on a pinned Go image in several stages
// and runs as a non-root user.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(s, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	if !regexp.MustCompile(`^golang:\d+\.\d+\.\d+`).MatchString(froms[0][1]) {
		t.Errorf("build stage FROM %s, want a golang image pinned to a patch release", froms[0][1])
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(s)
	if user == nil || strings.HasPrefix(user[1], "root") || user[1] == "0" {
		t.Errorf("Dockerfile USER = %v, want a non-root user", user)
	}
}
