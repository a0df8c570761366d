package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// clock is the pipeline's time in a test: the wall clock, moved forward by jumps.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *clock) jump(d time.Duration) { c.offset.Add(int64(d)) }

// deadlineRun is a portal whose team of reps 2, 3 and 4 (round robin) has a
// one-minute response deadline, and the pipeline's clock and configuration.
type deadlineRun struct {
	e     *env
	p     *bitrixtest.Portal
	clock *clock
	cfg   queue.Config
}

func newDeadlineRun(t *testing.T, name string, maxPasses int) *deadlineRun {
	t.Helper()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, name, 3)
	ctx := context.Background()
	s, _, err := e.engine.Settings(ctx, p.MemberID())
	if err != nil {
		t.Fatalf("Settings() error = %v", err)
	}
	s.Teams[0].Deadline = &routing.Deadline{Minutes: 1, MaxPasses: maxPasses}
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
		t.Fatalf("SaveSettings() error = %v", err)
	}
	r := &deadlineRun{e: e, p: p, clock: &clock{}, cfg: testConfig(name)}
	r.cfg.Now = r.clock.now
	return r
}

// route adds a lead and waits until it is routed and its echo settled.
func (r *deadlineRun) route(t *testing.T) int {
	t.Helper()
	var id int
	r.e.settler(t, r.p)("lead routed and its echo", 2, func() {
		id = r.p.AddLead(1, map[string]any{"TITLE": "Waiting for a call"})
	})
	return id
}

// pass moves the clock past the lead's deadline and waits for its check to run:
// writes more deliveries (the echo of a pass) and the check no longer due.
func (r *deadlineRun) pass(t *testing.T, id, writes int) {
	t.Helper()
	r.e.settler(t, r.p)("deadline check", writes, func() { r.clock.jump(61 * time.Second) })
	waitFor(t, 10*time.Second, "deadline check settled", func() bool {
		due, ok := r.check(t, id)
		return !ok || due.After(r.clock.now())
	})
}

// check returns when the lead's deadline check is due, and whether it has one.
func (r *deadlineRun) check(t *testing.T, id int) (time.Time, bool) {
	t.Helper()
	ms, err := r.e.rdb.ZScore(context.Background(), keyspace.Deadlines(r.p.MemberID()),
		strconv.Itoa(id)).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false
	}
	if err != nil {
		t.Fatalf("ZScore() error = %v", err)
	}
	return time.UnixMilli(int64(ms)), true
}

// overdueUnworked routes a lead on a new run, stops the run's workers and moves the
// clock past the lead's deadline: its check is due and no worker takes it.
func overdueUnworked(t *testing.T, name string) (*deadlineRun, int) {
	t.Helper()
	r := newDeadlineRun(t, name, 0)
	_, kill := r.e.startQueue(t, r.cfg)
	id := r.route(t)
	kill()
	r.clock.jump(61 * time.Second)
	return r, id
}

// turnUnsettled has a new instance take one turn of the portal's work without
// settling it (queue.TurnUnsettled), and returns how many leads it took.
func (r *deadlineRun) turnUnsettled() (int, error) {
	q := queue.New(r.e.rdb, r.e.engine, r.e.store, r.e.log, r.cfg)
	return q.TurnUnsettled(context.Background(), r.p.MemberID())
}

// history returns the lead's log entries, oldest first.
func (r *deadlineRun) history(t *testing.T, q *queue.Queue, id int) []queue.LogEntry {
	t.Helper()
	h, err := q.LeadHistory(context.Background(), r.p.MemberID(), int64(id))
	if err != nil {
		t.Fatalf("LeadHistory() error = %v", err)
	}
	slices.Reverse(h)
	return h
}

// assigned lists the owners the lead's log entries gave it, in order.
func assigned(h []queue.LogEntry) []int64 {
	var out []int64
	for _, e := range h {
		if e.Outcome == queue.OutcomeAssigned {
			out = append(out, e.UserID)
		}
	}
	return out
}

// TestDeadlinePassesLeadOn leaves a lead untouched past deadline after deadline: it
// goes to the next rep each time with the reason on its timeline, in the log and in
// a notification, never back to who missed it, and once everyone of the team had
// it, it stays with its last owner and the log says so.
func TestDeadlinePassesLeadOn(t *testing.T) {
	t.Parallel()
	r := newDeadlineRun(t, "deadline-pass", 0)
	q, _ := r.e.startQueue(t, r.cfg)
	id := r.route(t)
	if got := ownerID(t, r.p, id); got != 2 {
		t.Fatalf("first owner = %d, want rep 2", got)
	}
	due, ok := r.check(t, id)
	if !ok || due.Sub(r.clock.now()) > time.Minute || due.Sub(r.clock.now()) < 50*time.Second {
		t.Fatalf("check = %v, %v; want one due in a minute", due, ok)
	}

	r.pass(t, id, 1)
	if got := ownerID(t, r.p, id); got != 3 {
		t.Fatalf("owner after the first deadline = %d, want rep 3", got)
	}
	h := r.history(t, q, id)
	last := h[len(h)-1]
	if !strings.Contains(last.Reason, "Rep2 Sales — missed the response deadline") ||
		!strings.Contains(last.Reason, "not taken up within 1 minutes") {
		t.Errorf("log reason = %q, want the missed deadline and the pass", last.Reason)
	}
	if !slices.Contains(last.Skipped, queue.Skip{UserID: 2, Reason: routing.SkipMissedDeadline}) {
		t.Errorf("log skips = %+v, want rep 2 for the missed deadline", last.Skipped)
	}
	if tl := r.p.Timeline(id); len(tl) != 2 || !strings.Contains(tl[1], "missed the response") {
		t.Errorf("timeline = %q, want the first decision and the pass", tl)
	}
	if n := r.p.Notifications(3); len(n) != 1 {
		t.Errorf("notifications of rep 3 = %q, want one", n)
	}
	if _, ok := r.check(t, id); !ok {
		t.Fatal("no check after the pass, want one for rep 3's deadline")
	}

	r.pass(t, id, 1)
	if got := ownerID(t, r.p, id); got != 4 {
		t.Fatalf("owner after the second deadline = %d, want rep 4", got)
	}
	r.pass(t, id, 0)
	if got := ownerID(t, r.p, id); got != 4 {
		t.Errorf("owner after everyone missed = %d, want rep 4 (nobody else left)", got)
	}
	h = r.history(t, q, id)
	if got, want := assigned(h), []int64{2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("owners in the log = %v, want %v", got, want)
	}
	last = h[len(h)-1]
	if last.Outcome != queue.OutcomeNotRouted ||
		!strings.Contains(last.Reason, "stays with its owner") {
		t.Errorf("last log entry = %s %q, want not routed: stays with its owner",
			last.Outcome, last.Reason)
	}
	if _, ok := r.check(t, id); ok {
		t.Error("a check is left after the lead stayed, want none")
	}
}

// TestDeadlineLeavesTakenUpLeads checks that a lead whose status changed, or that a
// person gave to somebody by hand, is not passed on when its deadline passes.
func TestDeadlineLeavesTakenUpLeads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		act   func(p *bitrixtest.Portal, id int)
		owner int
	}{
		{name: "status changed", owner: 2, act: func(p *bitrixtest.Portal, id int) {
			p.UpdateLead(2, id, map[string]any{"STATUS_ID": "IN_PROCESS"})
		}},
		{name: "reassigned by hand", owner: 4, act: func(p *bitrixtest.Portal, id int) {
			p.UpdateLead(1, id, map[string]any{"ASSIGNED_BY_ID": 4})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newDeadlineRun(t, "deadline-taken", 0)
			q, _ := r.e.startQueue(t, r.cfg)
			id := r.route(t)
			r.e.settler(t, r.p)(tt.name, 1, func() { tt.act(r.p, id) })
			r.pass(t, id, 0)
			if got := ownerID(t, r.p, id); got != tt.owner {
				t.Errorf("owner = %d, want %d", got, tt.owner)
			}
			if got := assigned(r.history(t, q, id)); !slices.Equal(got, []int64{2}) {
				t.Errorf("owners in the log = %v, want only the first decision", got)
			}
			if _, ok := r.check(t, id); ok {
				t.Error("the check is still there, want it dropped")
			}
		})
	}
}

// TestDeadlineMaxPasses checks that a lead passed on MaxPasses times is not watched
// any more.
func TestDeadlineMaxPasses(t *testing.T) {
	t.Parallel()
	r := newDeadlineRun(t, "deadline-max", 1)
	q, _ := r.e.startQueue(t, r.cfg)
	id := r.route(t)
	r.pass(t, id, 1)
	if _, ok := r.check(t, id); ok {
		t.Fatal("a check after the only pass, want none")
	}
	r.clock.jump(2 * time.Minute)
	time.Sleep(100 * time.Millisecond) // the workers poll every few milliseconds
	if got := ownerID(t, r.p, id); got != 3 {
		t.Errorf("owner = %d, want rep 3 (one pass)", got)
	}
	if got := assigned(r.history(t, q, id)); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("owners in the log = %v, want [2 3]", got)
	}
}

// TestDeadlineCheckRunsOnce runs one deadline's check twice in several ways: taken
// again after the pass, by an instance that dies before settling it, and by two
// instances at once. The lead is passed on once each time.
func TestDeadlineCheckRunsOnce(t *testing.T) {
	t.Parallel()
	t.Run("taken again", func(t *testing.T) {
		t.Parallel()
		r := newDeadlineRun(t, "deadline-again", 0)
		q, _ := r.e.startQueue(t, r.cfg)
		id := r.route(t)
		r.pass(t, id, 1)
		due, _ := r.check(t, id)
		// The same check once more, as a worker that took it before the pass would.
		err := r.e.rdb.ZAdd(context.Background(), keyspace.Deadlines(r.p.MemberID()),
			redis.Z{Score: 1, Member: strconv.Itoa(id)}).Err()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "check rescheduled", func() bool {
			again, ok := r.check(t, id)
			return ok && again.Equal(due)
		})
		if got := ownerID(t, r.p, id); got != 3 {
			t.Errorf("owner = %d, want rep 3 (one pass)", got)
		}
		if got := assigned(r.history(t, q, id)); !slices.Equal(got, []int64{2, 3}) {
			t.Errorf("owners in the log = %v, want [2 3]", got)
		}
	})
	t.Run("dies before settling", func(t *testing.T) {
		t.Parallel()
		r, id := overdueUnworked(t, "deadline-crash")
		before := len(r.p.Deliveries())
		if n, err := r.turnUnsettled(); err != nil || n != 1 {
			t.Fatalf("TurnUnsettled() = %d, %v; want the one check", n, err)
		}
		r.cfg.Consumer = "deadline-crash-2"
		r.e.startQueue(t, r.cfg)
		ps := []*bitrixtest.Portal{r.p}
		waitFor(t, 10*time.Second, "echo of the pass settled", func() bool {
			return len(r.p.Deliveries()) > before && depth(t, r.e, ps) == 0 &&
				pendingCount(t, r.e, ps) == 0
		})
		if got := ownerID(t, r.p, id); got != 3 {
			t.Errorf("owner = %d, want rep 3", got)
		}
		if n := r.p.Notifications(3); len(n) != 1 {
			t.Errorf("notifications of rep 3 = %q, want one", n)
		}
		if due, ok := r.check(t, id); !ok || !due.After(r.clock.now()) {
			t.Errorf("check = %v, %v; want rep 3's deadline ahead", due, ok)
		}
		r.pass(t, id, 1)
		if got := ownerID(t, r.p, id); got != 4 {
			t.Errorf("owner after rep 3's deadline = %d, want rep 4", got)
		}
	})
	t.Run("two instances at once", func(t *testing.T) {
		t.Parallel()
		r, id := overdueUnworked(t, "deadline-twice")
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if _, err := r.turnUnsettled(); err != nil {
					t.Errorf("TurnUnsettled() error = %v", err)
				}
			})
		}
		wg.Wait()
		if got := ownerID(t, r.p, id); got != 3 {
			t.Errorf("owner = %d, want rep 3 (one pass)", got)
		}
		raw, err := r.e.rdb.HGet(context.Background(), keyspace.Routed(r.p.MemberID()),
			strconv.Itoa(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			UserID int64   `json:"u"`
			Round  int     `json:"g"`
			Missed []int64 `json:"dm"`
		}
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.UserID != 3 || rec.Round != 1 || !slices.Equal(rec.Missed, []int64{2}) {
			t.Errorf("record = %+v, want rep 3 in round 1 after rep 2 missed", rec)
		}
	})
}
