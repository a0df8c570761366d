package queue_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/queue"
)

// intakeLead posts a lead to an intake URL of the run's portal, on an intake whose
// clock is the pipeline's, and waits until the lead exists with its owner, its
// deadline check is scheduled and its ONCRMLEADADD is settled.
func (r *deadlineRun) intakeLead(t *testing.T, q *queue.Queue) int {
	t.Helper()
	ctx := context.Background()
	router := &intake.EngineRouter{Engine: r.e.engine, Clients: r.e.store.Client,
		RDB: r.e.rdb, Now: r.clock.now}
	svc := intake.New(r.e.rdb, func(m string) intake.Caller { return r.e.store.Client(m) },
		router, intake.Config{PollInterval: 20 * time.Millisecond}, r.e.log)
	svc.Start(ctx)
	t.Cleanup(func() { svc.Stop(context.Background()) })
	src, _, err := intake.NewStore(r.e.rdb).Create(ctx, r.p.MemberID(), "Site", intake.Options{})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	var rc *intake.Receipt
	r.e.settler(t, r.p)("intake lead created", 1, func() {
		rc, err = svc.Accept(ctx, src, &intake.Post{Lead: intake.Lead{Name: "Anna"}}, "")
		if err != nil {
			t.Fatalf("Accept() error = %v", err)
		}
		rc, err = svc.Wait(ctx, src, rc.IntakeID, 10*time.Second)
		if err != nil || rc.State != intake.Created {
			t.Fatalf("Wait() = %+v, %v; want the lead created", rc, err)
		}
	})
	id := int(rc.LeadID)
	waitFor(t, 10*time.Second, "intake lead settled", func() bool {
		_, ok := r.check(t, id)
		st, err := q.Stats(ctx, r.p.MemberID())
		return ok && err == nil && st.HeldNow == 0
	})
	return id
}

// TestIntakeLeadDeadline leaves a lead the intake webhook created with its owner
// untouched past its team's deadline: it is passed to the next person with the
// reason, as a lead the pipeline routed is. One whose status changed since its
// creation stays. Recording the lead again later moves no check.
func TestIntakeLeadDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		act    func(p *bitrixtest.Portal, id int)
		owners []int64 // in the log
	}{
		{name: "untouched", owners: []int64{2, 3}},
		{name: "status changed", owners: []int64{2}, act: func(p *bitrixtest.Portal, id int) {
			p.UpdateLead(2, id, map[string]any{"STATUS_ID": "IN_PROCESS"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newDeadlineRun(t, "intake-deadline", 0)
			r.cfg.IntakeRecheck = 20 * time.Millisecond
			q, _ := r.e.startQueue(t, r.cfg)
			created := r.clock.now()
			id := r.intakeLead(t, q)
			if got := ownerID(t, r.p, id); got != 2 {
				t.Fatalf("intake owner = %d, want rep 2", got)
			}
			due, _ := r.check(t, id)
			if d := due.Sub(created); d < time.Minute || d > time.Minute+5*time.Second {
				t.Errorf("check due %v after creation, want a minute", d)
			}
			if tt.act != nil {
				// MOVED_TIME has whole seconds: the change comes after the second the
				// lead was created in.
				time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
				r.e.settler(t, r.p)(tt.name, 1, func() { tt.act(r.p, id) })
			}
			writes := len(tt.owners) - 1
			r.pass(t, id, writes)
			h := r.history(t, q, id)
			if got := assigned(h); !slices.Equal(got, tt.owners) {
				t.Fatalf("owners in the log = %v, want %v", got, tt.owners)
			}
			if got, want := int64(ownerID(t, r.p, id)), tt.owners[writes]; got != want {
				t.Errorf("owner = %d, want %d", got, want)
			}
			if writes == 0 {
				if _, ok := r.check(t, id); ok {
					t.Error("the check is still there, want it dropped")
				}
				return
			}
			if last := h[len(h)-1]; !strings.Contains(last.Reason, "missed the response") {
				t.Errorf("log reason = %q, want the missed deadline", last.Reason)
			}
			tl := r.p.Timeline(id)
			if len(tl) != 2 || !strings.Contains(tl[1], "missed the response") {
				t.Errorf("timeline = %q, want intake's decision and the pass", tl)
			}
			next, ok := r.check(t, id)
			if !ok {
				t.Fatal("no check after the pass, want one for rep 3's deadline")
			}
			ok, err := queue.RecordCreated(context.Background(), r.e.rdb, r.p.MemberID(),
				queue.Created{LeadID: int64(id), UserID: 2, TeamID: "sales", At: created,
					Deadline: time.Minute})
			if err != nil || ok {
				t.Errorf("RecordCreated() again = %v, %v; want false", ok, err)
			}
			if again, _ := r.check(t, id); !again.Equal(next) {
				t.Errorf("check after RecordCreated() again = %v, want %v", again, next)
			}
			if got := ownerID(t, r.p, id); got != 3 {
				t.Errorf("owner after RecordCreated() again = %d, want rep 3", got)
			}
		})
	}
}
