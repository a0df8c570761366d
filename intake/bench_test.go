package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
)

// BenchmarkAccept measures what an intake post costs before it is answered:
// parsing, the rate-limit count and the script that stores it, on a real Redis.
// It reports posts a second beside raw XADDs a second of the same Redis.
func BenchmarkAccept(b *testing.B) {
	ctx := context.Background()
	rdb := redistest.New(b)
	if err := rdb.HSet(ctx, keyspace.Portal("bench-portal"), "status", "active").Err(); err != nil {
		b.Fatal(err)
	}
	store := NewStore(rdb)
	src, _, err := store.Create(ctx, "bench-portal", "Landing", Options{RatePerMinute: 10000})
	if err != nil {
		b.Fatal(err)
	}
	svc := New(rdb, nil, nil, Config{}, slog.New(slog.DiscardHandler))
	start := time.Now()
	i := 0
	for b.Loop() {
		body := fmt.Sprintf(`{"name":"Person %d","phone":"+49 30 %07d","utm_source":"ads"}`, i, i)
		post, err := Parse("application/json", []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Allow(ctx, src); err != nil && !errors.Is(err, ErrRateLimited) {
			b.Fatal(err)
		}
		if _, err := svc.Accept(ctx, src, post, ""); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perPost := time.Since(start) / time.Duration(max(i, 1))
	xStart := time.Now()
	for n := range i {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: "bench:raw", Values: []any{"id", n}})
	}
	perXAdd := time.Since(xStart) / time.Duration(max(i, 1))
	b.ReportMetric(float64(time.Second/max(perPost, 1)), "posts/s")
	b.ReportMetric(float64(perXAdd)/float64(max(perPost, 1)), "xadd-time/post-time")
}
