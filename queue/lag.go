package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/leadrouter/leadrouter/keyspace"
)

// lagEvery is how often an instance measures the queue's lag.
const lagEvery = 5 * time.Second

// Lag returns how long the most overdue portal with work has waited for a worker:
// zero when every portal with work is held by a worker, paused, or just arrived.
// It grows without bound when no worker runs, whatever the portals' queues hold.
func (q *Queue) Lag(ctx context.Context) (time.Duration, error) {
	first, err := q.rdb.ZRangeWithScores(ctx, keyspace.ReadyPortals(), 0, 0).Result()
	if err != nil {
		return 0, fmt.Errorf("read the portals with work: %w", err)
	}
	if len(first) == 0 {
		return 0, nil
	}
	due := time.UnixMilli(int64(first[0].Score))
	return max(q.cfg.Now().Sub(due), 0), nil
}

// lagLoop keeps leadrouter_queue_lag_seconds current until ctx ends.
func (q *Queue) lagLoop(ctx context.Context) {
	for {
		if lag, err := q.Lag(ctx); err == nil {
			mLag.Set(lag.Seconds())
		} else if ctx.Err() == nil {
			q.log.Warn("measure queue lag failed", "error", err)
		}
		sleep(ctx, lagEvery)
		if ctx.Err() != nil {
			return
		}
	}
}
