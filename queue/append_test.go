package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
)

func newAppendQueue(rdb redis.UniversalClient) *Queue {
	return New(rdb, nil, nil, slog.New(slog.DiscardHandler), Config{})
}

// streamLeads returns the lead IDs in the portal's stream, in stream order.
func streamLeads(t *testing.T, rdb redis.UniversalClient, memberID string) []string {
	t.Helper()
	entries, err := rdb.XRange(context.Background(), keyspace.EventStream(memberID), "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE error = %v", err)
	}
	var leads []string
	for _, e := range entries {
		leads = append(leads, fmt.Sprint(e.Values["lead"]))
	}
	return leads
}

// TestEnqueueConcurrent checks that concurrent appends of several portals, which
// share round trips, each land once in their own stream and mark their portal.
func TestEnqueueConcurrent(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	q := newAppendQueue(rdb)
	ctx := context.Background()
	portals := []string{"p1", "p2", "p3"}
	const each = 100
	var wg sync.WaitGroup
	errs := make(chan error, len(portals)*each)
	for _, m := range portals {
		for i := range each {
			wg.Go(func() {
				errs <- q.Enqueue(ctx, m, Item{Event: bitrix.EventLeadAdd, LeadID: int64(i + 1)})
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Enqueue() error = %v", err)
		}
	}
	var want []string
	for i := range each {
		want = append(want, fmt.Sprint(i+1))
	}
	slices.Sort(want)
	for _, m := range portals {
		got := streamLeads(t, rdb, m)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("stream of %s holds leads %v, want 1..%d once each", m, got, each)
		}
		if err := rdb.ZScore(ctx, keyspace.ReadyPortals(), m).Err(); err != nil {
			t.Errorf("ZSCORE ready %s error = %v, want the portal marked", m, err)
		}
	}
}

// TestEnqueueGivenUp checks that an append whose caller gave up before it was sent
// is left out, and that the appends after it still go through.
func TestEnqueueGivenUp(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	q := newAppendQueue(rdb)
	ctx := context.Background()
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatalf("Enqueue(1) error = %v", err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	err := q.Enqueue(gone, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue(2) with a cancelled context error = %v, want context.Canceled", err)
	}
	// Appends of one node are flushed in order: once 3 is in, 2 was looked at.
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 3}); err != nil {
		t.Fatalf("Enqueue(3) error = %v", err)
	}
	if got, want := streamLeads(t, rdb, "p"), []string{"1", "3"}; !slices.Equal(got, want) {
		t.Errorf("stream holds leads %v, want %v", got, want)
	}
}

// TestEnqueuePausedRedis checks that an append waits no longer than its caller's
// deadline while Redis is paused, and that a caller with time left gets its entry
// stored once Redis answers again.
func TestEnqueuePausedRedis(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	q := newAppendQueue(rdb)
	ctx := context.Background()
	if err := q.Enqueue(ctx, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
		t.Fatalf("Enqueue(1) error = %v", err)
	}
	err := redistest.ForEachNode(ctx, rdb, func(ctx context.Context, node *redis.Client) error {
		return node.Do(ctx, "CLIENT", "PAUSE", "500", "WRITE").Err()
	})
	if err != nil {
		t.Fatalf("CLIENT PAUSE error = %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = q.Enqueue(short, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 2})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue(2) while paused error = %v, want context.DeadlineExceeded", err)
	}
	long, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := q.Enqueue(long, "p", Item{Event: bitrix.EventLeadAdd, LeadID: 3}); err != nil {
		t.Fatalf("Enqueue(3) error = %v, want it stored after the pause", err)
	}
	// Lead 2 was sent before its caller gave up, so it may be stored too: an event
	// answered 503 may be appended, never one answered 200 lost.
	if got := streamLeads(t, rdb, "p"); !slices.Contains(got, "3") {
		t.Errorf("stream holds leads %v, want 3 among them", got)
	}
}

// TestEnqueueSlowMasterDelaysItsPortalsOnly checks, on a cluster, that appends are
// grouped by the master of the portal's stream: while one master is paused, a
// portal on another master is still answered.
func TestEnqueueSlowMasterDelaysItsPortalsOnly(t *testing.T) {
	t.Parallel()
	rdb := redistest.StartCluster(t).Client(t)
	q := newAppendQueue(rdb)
	ctx := context.Background()
	master := func(key string) *redis.Client {
		t.Helper()
		c, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%s) error = %v", key, err)
		}
		return c
	}
	ready := master(keyspace.ReadyPortals()).Options().Addr
	var slow, fast string
	var slowNode *redis.Client
	for i := 0; slow == "" || fast == ""; i++ {
		m := fmt.Sprintf("portal%d", i)
		node := master(keyspace.EventStream(m))
		switch addr := node.Options().Addr; {
		case slow == "" && addr != ready:
			slow, slowNode = m, node
		case slow != "" && addr != slowNode.Options().Addr:
			fast = m
		}
	}
	for _, m := range []string{slow, fast} { // consumer groups first, before the pause
		if err := q.Enqueue(ctx, m, Item{Event: bitrix.EventLeadAdd, LeadID: 1}); err != nil {
			t.Fatalf("Enqueue(%s) error = %v", m, err)
		}
	}
	if err := slowNode.Do(ctx, "CLIENT", "PAUSE", "2000", "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE error = %v", err)
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- q.Enqueue(ctx, slow, Item{Event: bitrix.EventLeadAdd, LeadID: 2}) }()
	waitFlushing(t, q.appenderFor(ctx, slow))
	fastCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := q.Enqueue(fastCtx, fast, Item{Event: bitrix.EventLeadAdd, LeadID: 2}); err != nil {
		t.Fatalf("Enqueue(%s) while another master is paused error = %v", fast, err)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("Enqueue(%s) after the pause error = %v", slow, err)
	}
	for _, m := range []string{slow, fast} {
		if got, want := streamLeads(t, rdb, m), []string{"1", "2"}; !slices.Equal(got, want) {
			t.Errorf("stream of %s holds leads %v, want %v", m, got, want)
		}
	}
}

// waitFlushing waits until a has a flush in flight.
func waitFlushing(t *testing.T, a *appender) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		a.mu.Lock()
		n := a.flushing
		a.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no flush started")
}
