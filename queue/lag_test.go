package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/queue"
)

// TestLagGrowsWithoutWorkers queues a lead while no worker runs: the lag grows
// with the time the lead waits, and falls to zero once a worker took the portal.
func TestLagGrowsWithoutWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "lag", 1)
	ctx := context.Background()
	idle := queue.New(e.rdb, e.engine, e.store, e.log, testConfig("idle"))
	if lag, err := idle.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("Lag() with nothing queued = %v, %v; want 0", lag, err)
	}
	if err := idle.Enqueue(ctx, p.MemberID(), queue.Item{Event: "ONCRMLEADADD",
		LeadID: int64(p.AddLead(1, nil))}); err != nil {
		t.Fatal(err)
	}
	const wait = 300 * time.Millisecond
	time.Sleep(wait)
	if lag, err := idle.Lag(ctx); err != nil || lag < wait {
		t.Fatalf("Lag() after %v without workers = %v, %v; want at least that", wait, lag, err)
	}
	e.startQueue(t, testConfig("lag"))
	waitFor(t, 10*time.Second, "lag back to zero", func() bool {
		lag, err := idle.Lag(ctx)
		return err == nil && lag == 0
	})
}
