package queue

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
)

// TestSchedulerFairness checks that portals are leased oldest first, that a leased
// portal is invisible until released or its lease ends, and that a portal with more
// work goes to the back of the line.
func TestSchedulerFairness(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	clock := time.UnixMilli(1_700_000_000_000)
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{
		Lease: 10 * time.Second, Gather: -1, Now: func() time.Time { return clock },
	})
	for i, m := range []string{"a", "b", "c"} {
		clock = clock.Add(time.Millisecond)
		if err := q.Enqueue(ctx, m, Item{Event: bitrix.EventLeadAdd, LeadID: int64(i + 1)}); err != nil {
			t.Fatalf("Enqueue(%s) error = %v", m, err)
		}
	}
	clock = clock.Add(time.Millisecond)
	a, tokenA := mustLease(t, q, "a")
	mustLease(t, q, "b")
	mustLease(t, q, "c")
	if m, _, _, _ := q.lease(ctx); m != "" {
		t.Fatalf("lease() = %q while every portal is leased, want none", m)
	}
	// a still has its entry (nobody read it): released to the back, due now.
	if err := q.release(ctx, a, tokenA, turnEnd{}); err != nil {
		t.Fatalf("release() error = %v", err)
	}
	clock = clock.Add(time.Millisecond)
	mustLease(t, q, "a")
	// b's lease runs out before a's: another worker may take it.
	clock = clock.Add(10 * time.Second)
	mustLease(t, q, "b")
}

// TestSchedulerReleaseIdle checks that an idle portal leaves the set, that a paused
// one stays with its pause, and that a stale lease token changes nothing.
func TestSchedulerReleaseIdle(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	clock := time.UnixMilli(1_700_000_000_000)
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{
		Lease: 10 * time.Second, Gather: -1, Now: func() time.Time { return clock },
	})
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatal(err)
	}
	m, token := mustLease(t, q, "p")
	units, _, _, err := q.take(ctx, m)
	if err != nil || len(units) != 1 {
		t.Fatalf("take() = %d units, %v; want 1", len(units), err)
	}
	// A stale token must not release the portal.
	if err := q.release(ctx, m, token-1, turnEnd{}); err != nil {
		t.Fatal(err)
	}
	if s, _ := rdb.ZScore(ctx, keyspace.ReadyPortals(), m).Result(); int64(s) != token {
		t.Fatalf("score after stale release = %v, want the lease %d", s, token)
	}
	if err := q.ack(ctx, m, units[0].entries); err != nil {
		t.Fatal(err)
	}
	pause := clock.Add(5 * time.Second)
	if err := q.release(ctx, m, token, turnEnd{notBefore: pause}); err != nil {
		t.Fatal(err)
	}
	if s, _ := rdb.ZScore(ctx, keyspace.ReadyPortals(), m).Result(); int64(s) != pause.UnixMilli() {
		t.Fatalf("score after paused release = %v, want %d", s, pause.UnixMilli())
	}
	clock = pause
	m, token = mustLease(t, q, "p")
	if err := q.release(ctx, m, token, turnEnd{}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.ZCard(ctx, keyspace.ReadyPortals()).Result(); n != 0 {
		t.Fatalf("ready portals after idle release = %d, want 0", n)
	}
}

// TestTakeReclaimsAbandoned checks that entries a dead consumer left pending are
// taken over once they have been idle for a lease, and not before.
func TestTakeReclaimsAbandoned(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := Config{Consumer: "dead", Lease: 200 * time.Millisecond, Gather: -1}
	dead := New(rdb, nil, nil, log, cfg)
	cfg.Consumer = "live"
	live := New(rdb, nil, nil, log, cfg)
	for id := int64(1); id <= 3; id++ {
		if err := dead.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if units, _, _, err := dead.take(ctx, "p"); err != nil || len(units) != 3 {
		t.Fatalf("take() by the first consumer = %d, %v; want 3", len(units), err)
	}
	if units, _, _, _ := live.take(ctx, "p"); len(units) != 0 {
		t.Fatalf("take() right away = %d units, want 0 (still within the lease)", len(units))
	}
	time.Sleep(250 * time.Millisecond)
	units, _, _, err := live.take(ctx, "p")
	if err != nil || len(units) != 3 {
		t.Fatalf("take() after the lease = %d, %v; want 3", len(units), err)
	}
}

func TestMergeDedupesByLead(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{Gather: -1})
	for _, it := range []Item{
		{Event: bitrix.EventLeadUpdate, LeadID: 5}, {Event: bitrix.EventLeadAdd, LeadID: 5},
		{Event: bitrix.EventLeadAdd, LeadID: 5, Attempt: 2}, {Event: bitrix.EventLeadUpdate, LeadID: 6},
		{Event: bitrix.EventOffline},
	} {
		if err := q.Enqueue(ctx, "p", it); err != nil {
			t.Fatal(err)
		}
	}
	units, offline, _, err := q.take(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 2 || len(offline) != 1 {
		t.Fatalf("take() = %d units, %d offline; want 2, 1", len(units), len(offline))
	}
	u := units[0]
	if u.leadID != 5 || u.event != bitrix.EventLeadAdd || len(u.entries) != 3 || u.attempt != 2 {
		t.Errorf("unit of lead 5 = %+v; want add event, 3 entries, attempt 2", u)
	}
	if units[1].event != bitrix.EventLeadUpdate {
		t.Errorf("unit of lead 6 event = %s, want update", units[1].event)
	}
}

func mustLease(t *testing.T, q *Queue, want string) (string, int64) {
	t.Helper()
	m, token, _, err := q.lease(context.Background())
	if err != nil || m != want {
		t.Fatalf("lease() = %q, %v; want %q", m, err, want)
	}
	return m, token
}

// TestTakeAfterStreamDeleted checks that a portal whose stream was deleted with its
// data (uninstall) gets its consumer group back when events come again.
func TestTakeAfterStreamDeleted(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{Gather: -1})
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, keyspace.EventStream("p")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := q.take(ctx, "p"); err == nil {
		t.Fatal("take() on a stream without its group = nil error, want NOGROUP")
	}
	units, _, _, err := q.take(ctx, "p")
	if err != nil || len(units) != 1 || units[0].leadID != 2 {
		t.Fatalf("take() after the group is recreated = %v, %v; want lead 2", units, err)
	}
}

// TestForget checks that an uninstalled portal leaves the schedule and, when
// cleaned, keeps none of the pipeline's keys.
func TestForget(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{Gather: -1})
	if err := q.Enqueue(ctx, "gone", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, keyspace.Routed("gone"), "1", `{"u":2}`)
	if err := q.Forget(ctx, "gone", true); err != nil {
		t.Fatalf("Forget() error = %v", err)
	}
	if n, _ := rdb.ZCard(ctx, keyspace.ReadyPortals()).Result(); n != 0 {
		t.Errorf("ready portals after Forget = %d, want 0", n)
	}
	keys, _ := rdb.Keys(ctx, "lr:{gone}:*").Result()
	if len(keys) != 0 {
		t.Errorf("keys left after a clean Forget: %v", keys)
	}
}

// TestSweepReschedules checks that a sweep puts a portal whose ready mark was lost
// back on the schedule.
func TestSweepReschedules(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	ctx := context.Background()
	q := New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{Gather: -1})
	if err := q.Enqueue(ctx, "lost", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatal(err)
	}
	rdb.ZRem(ctx, keyspace.ReadyPortals(), "lost")
	if err := q.reschedule(ctx, "lost"); err != nil {
		t.Fatalf("reschedule() error = %v", err)
	}
	if _, err := rdb.ZScore(ctx, keyspace.ReadyPortals(), "lost").Result(); err != nil {
		t.Errorf("portal not scheduled again: %v", err)
	}
}
