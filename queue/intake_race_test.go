package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

// gatedRouter is intake's EngineRouter with a gate between the lead's creation and
// the record of its decision, where the intake worker may be slow or die.
type gatedRouter struct {
	*intake.EngineRouter
	reached chan int64    // receives the created lead's ID
	release chan struct{} // closed to let Created through
}

func (g *gatedRouter) Created(ctx context.Context, memberID string, leadID int64,
	d intake.Decision) error {
	g.reached <- leadID
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.EngineRouter.Created(ctx, memberID, leadID, d)
}

// TestIntakeLeadOvertakesRecord has the ONCRMLEADADD of a lead intake created reach
// the pipeline before intake records its decision. The pipeline must wait for the
// record rather than route the lead again; when intake never records it, the lead
// is routed like any other after Config.IntakeWait.
func TestIntakeLeadOvertakesRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		record bool // intake records the decision after the pipeline held the lead
	}{
		{name: "intake records late", record: true},
		{name: "intake worker died", record: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
			p := e.install(t, "intake-race", 2)
			ctx := context.Background()
			member := p.MemberID()
			cfg := testConfig("race")
			cfg.IntakeRecheck = 20 * time.Millisecond
			cfg.IntakeWait = time.Hour
			if !tt.record {
				cfg.IntakeWait = 500 * time.Millisecond
			}
			q, _ := e.startQueue(t, cfg)
			g := &gatedRouter{EngineRouter: &intake.EngineRouter{Engine: e.engine,
				Clients: e.store.Client, RDB: e.rdb},
				reached: make(chan int64, 1), release: make(chan struct{})}
			svc := intake.New(e.rdb, func(m string) intake.Caller { return e.store.Client(m) },
				g, intake.Config{PollInterval: 20 * time.Millisecond}, e.log)
			svc.Start(ctx)
			t.Cleanup(func() {
				svc.Stop(context.Background())
			})
			src, _, err := intake.NewStore(e.rdb).Create(ctx, member, "Site", intake.Options{})
			if err != nil {
				t.Fatalf("Create() error = %v", err)
			}
			if _, err := svc.Accept(ctx, src, &intake.Post{Lead: intake.Lead{Name: "Anna"}},
				""); err != nil {
				t.Fatalf("Accept() error = %v", err)
			}
			var leadID int64
			select {
			case leadID = <-g.reached:
			case <-time.After(10 * time.Second):
				t.Fatal("intake never created the lead")
			}
			intakeOwner := owner(p, int(leadID))
			if tt.record {
				// The pipeline has the lead's event and waits for intake's record.
				waitFor(t, 10*time.Second, "lead waiting for intake", func() bool {
					_, err := e.rdb.ZScore(ctx, keyspace.Held(member),
						strconv.FormatInt(leadID, 10)).Result()
					return err == nil
				})
				close(g.release)
			}
			ps := []*bitrixtest.Portal{p}
			waitFor(t, 10*time.Second, "lead settled", func() bool {
				hist, _ := q.LeadHistory(ctx, member, leadID)
				return len(hist) > 0 && depth(t, e, ps) == 0 && pendingCount(t, e, ps) == 0
			})
			if !tt.record {
				close(g.release) // the worker comes back after the pipeline routed the lead
			}
			hist, err := q.LeadHistory(ctx, member, leadID)
			if err != nil || len(hist) != 1 || hist[0].Outcome != queue.OutcomeAssigned {
				t.Fatalf("LeadHistory() = %+v, %v; want one assignment", hist, err)
			}
			got := owner(p, int(leadID))
			if tt.record && (got != intakeOwner || fmt.Sprint(hist[0].UserID) != intakeOwner) {
				t.Errorf("owner = %s, logged %d; want intake's %s only", got, hist[0].UserID,
					intakeOwner)
			}
			if !tt.record && fmt.Sprint(hist[0].UserID) != got {
				t.Errorf("owner = %s, logged %d; want the pipeline's choice on the lead", got,
					hist[0].UserID)
			}
			st, err := q.Stats(ctx, member)
			if err != nil {
				t.Fatal(err)
			}
			if st.HeldNow != 0 {
				t.Errorf("held now = %d, want 0", st.HeldNow)
			}
		})
	}
}
