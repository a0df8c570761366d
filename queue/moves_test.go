package queue_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/queue"
)

// TestMovesByHand routes a lead and has people give it to others: every change of
// owner after the echo window is kept once, with who made it, also when the portal
// delivers the update twice; an update that moves nobody and the echo of the app's
// own write add none.
func TestMovesByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "moves", 3)
	cfg := testConfig("moves")
	cfg.OwnWriteTTL = 300 * time.Millisecond
	q, _ := e.startQueue(t, cfg)
	ctx := context.Background()
	settle := e.settler(t, p)
	if m, err := q.LeadMoves(ctx, p.MemberID(), 999); err != nil || m != nil {
		t.Fatalf("LeadMoves(lead never routed) = %v, %v; want none", m, err)
	}

	var id int
	settle("lead routed and its echo", 2, func() {
		id = p.AddLead(1, map[string]any{"TITLE": "Passed around"})
	})
	first := ownerID(t, p, id)
	leadMoves := func() []queue.Move {
		t.Helper()
		m, err := q.LeadMoves(ctx, p.MemberID(), int64(id))
		if err != nil {
			t.Fatalf("LeadMoves() error = %v", err)
		}
		return m
	}
	if m := leadMoves(); len(m) != 0 {
		t.Fatalf("moves after routing = %+v, want none (the echo is the app's own write)", m)
	}

	time.Sleep(cfg.OwnWriteTTL)
	second := first%3 + 2 // another rep of 2..4
	var move bitrixtest.Delivery
	settle("first move", 1, func() {
		before := len(p.Deliveries())
		p.UpdateLead(1, id, map[string]any{"ASSIGNED_BY_ID": second})
		waitFor(t, 5*time.Second, "update delivered", func() bool {
			return len(p.Deliveries()) > before
		})
		move = p.Deliveries()[before]
	})
	settle("the move delivered again", 0, func() { redeliver(t, move) })
	settle("an edit that moves nobody", 1, func() {
		p.UpdateLead(second, id, map[string]any{"TITLE": "Passed around, called"})
	})
	third := second%3 + 2
	settle("second move", 1, func() {
		p.UpdateLead(second, id, map[string]any{"ASSIGNED_BY_ID": third})
	})

	got := leadMoves()
	want := []queue.Move{
		{From: int64(first), To: int64(second), By: 1},
		{From: int64(second), To: int64(third), By: int64(second)},
	}
	if len(got) != len(want) {
		t.Fatalf("moves = %+v, want %+v", got, want)
	}
	for i := range want {
		g := got[i]
		if g.From != want[i].From || g.To != want[i].To || g.By != want[i].By {
			t.Errorf("move %d = %+v, want from %d to %d by %d", i, g, want[i].From,
				want[i].To, want[i].By)
		}
		if g.At.IsZero() || time.Since(g.At) > time.Minute {
			t.Errorf("move %d at %v, want the lead's DATE_MODIFY of just now", i, g.At)
		}
	}
	if hist, _ := q.LeadHistory(ctx, p.MemberID(), int64(id)); len(hist) != 1 {
		t.Errorf("history = %+v, want the one decision (moves by hand are not decisions)", hist)
	}
}

// ownerID returns the lead's responsible as a number.
func ownerID(t *testing.T, p *bitrixtest.Portal, id int) int {
	t.Helper()
	n, err := strconv.Atoi(owner(p, id))
	if err != nil {
		t.Fatalf("owner of lead %d = %q, want a user ID", id, owner(p, id))
	}
	return n
}
