package routing

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

const portal = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

// monday10 is a Monday, 10:00 UTC.
var monday10 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// backends are the Redis servers the engine must work on: miniredis, as the sandbox
// uses, and a real redis-server.
func backends(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	mr := miniredis.RunT(t)
	mini := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { mini.Close() })
	return map[string]redis.UniversalClient{
		"miniredis": mini,
		"redis":     redistest.New(t),
	}
}

// realRedis returns a client of a fresh redis-server.
func realRedis(t testing.TB) *redis.Client {
	t.Helper()
	return redistest.Start(t).Client(t)
}

// sequence returns a random source that yields the given numbers in a loop.
func sequence(xs ...float64) func() float64 {
	i := 0
	return func() float64 {
		x := xs[i%len(xs)]
		i++
		return x
	}
}

// people returns a directory of active people with IDs 1..n named by names.
func people(names ...string) Directory {
	d := Directory{People: map[int64]Person{}, Lang: "en"}
	for i, n := range names {
		id := int64(i + 1)
		d.People[id] = Person{ID: id, Name: n, Active: true, Timeman: TimemanOpened}
	}
	return d
}

// team returns a team of the members with IDs ids and the strategy.
func oneTeam(strategy string, ids ...int64) *Settings {
	t := Team{ID: "sales", Name: "Sales", Strategy: strategy}
	for _, id := range ids {
		t.Members = append(t.Members, Member{UserID: id})
	}
	return &Settings{Teams: []Team{t}, Default: Target{Kind: TargetTeam, Team: "sales"}}
}

// save stores settings, failing the test on error.
func save(t testing.TB, e *Engine, s *Settings) int {
	t.Helper()
	v, err := e.SaveSettings(context.Background(), portal, s, 1)
	if err != nil {
		t.Fatalf("SaveSettings() error = %v", err)
	}
	return v
}

// decide decides a lead, failing the test on error.
func decide(t testing.TB, e *Engine, id int64, dir Directory, now time.Time) Decision {
	t.Helper()
	d, err := e.Decide(context.Background(), portal, Lead{ID: id}, dir, now)
	if err != nil {
		t.Fatalf("Decide(%d) error = %v", id, err)
	}
	return d
}
