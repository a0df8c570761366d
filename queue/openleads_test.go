package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
)

// TestOpenCapFollowsThePortal fills two reps' open-lead caps, holds the next lead,
// and has one rep close a lead on the portal: the count of open leads follows the
// portal, and the held lead goes to the rep who has room again.
func TestOpenCapFollowsThePortal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "opencap", 2)
	ctx := context.Background()
	s, _, err := e.engine.Settings(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Teams[0].Members {
		s.Teams[0].Members[i].OpenCap = 1
	}
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("opencap")
	cfg.SweepEvery = time.Hour // the test sweeps by hand
	q, _ := e.startQueue(t, cfg)
	first := p.AddLead(1, map[string]any{"TITLE": "First"})
	p.AddLead(1, map[string]any{"TITLE": "Second"})
	waitFor(t, 10*time.Second, "both reps at their cap", func() bool { return unassigned(p) == 0 })
	third := p.AddLead(1, map[string]any{"TITLE": "Third"})
	waitFor(t, 10*time.Second, "third lead held", func() bool {
		st, _ := q.Stats(ctx, p.MemberID())
		return st.HeldNow == 1
	})

	closer := ownerID(t, p, first)
	p.UpdateLead(closer, first, map[string]any{"STATUS_ID": "JUNK"})
	time.Sleep(3 * cfg.HoldRetry)
	if got := owner(p, third); got != "1" {
		t.Fatalf("third lead owner = %s before the portal's leads were counted, want 1 (held)", got)
	}
	if err := q.Sweep(ctx, p.MemberID(), false); err != nil {
		t.Fatalf("Sweep() error = %v", err)
	}
	waitFor(t, 10*time.Second, "held lead routed", func() bool { return owner(p, third) != "1" })
	if got := owner(p, third); got != fmt.Sprint(closer) {
		t.Errorf("third lead owner = %s, want %d, who closed a lead", got, closer)
	}
	open, err := e.engine.OpenLeads(ctx, p.MemberID(), []int64{2, 3})
	if err != nil || open[2] != 1 || open[3] != 1 {
		t.Errorf("open leads = %v, %v; want one each", open, err)
	}
}
