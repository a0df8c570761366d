package routing

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/keyspace"
)

func TestSimulateLeavesLiveStateAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := realRedis(t)
	e := NewEngine(rdb, quietLog())
	save(t, e, oneTeam(RoundRobin, 1, 2, 3))
	dir := people("Anna", "Boris", "Vera", "Gleb")
	for id := int64(1); id <= 4; id++ {
		decide(t, e, id, dir, monday10) // the live turn is now Boris's
	}
	liveBefore := rdb.HGetAll(ctx, keyspace.RoutingLedger(portal)).Val()
	keysBefore := rdb.DBSize(ctx).Val()

	draft := oneTeam(RoundRobin, 1, 2, 3)
	draft.Teams[0].Members[1].DailyCap = 20
	draft.Teams[0].Members[2].DailyCap = 10
	draft.Teams = append(draft.Teams, Team{ID: "night", Name: "Night", Strategy: FirstAvailable,
		Members: []Member{{UserID: 4}}})
	draft.Teams[0].Fallback = Target{Kind: TargetTeam, Team: "night"}
	draft.Rules = []Rule{{ID: "partners", Name: "Partners", Target: Target{Kind: TargetHold},
		Conditions: []Condition{{Field: "SOURCE_ID", Op: OpEquals, Value: "PARTNER"}}}}
	away := dir.People[1]
	away.AbsentUntil = monday10.AddDate(0, 0, 1)
	dir.People[1] = away
	var leads []Lead
	for i := range 100 {
		source := "WEB"
		if i%10 == 9 {
			source = "PARTNER"
		}
		at := monday10.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		leads = append(leads, Lead{ID: int64(1000 + i),
			Fields: map[string]string{"SOURCE_ID": source, "DATE_CREATE": at}})
	}
	leads = append(leads, leads[0]) // a lead seen twice is decided once

	rep, err := e.Simulate(ctx, portal, draft, leads, dir, monday10)
	if err != nil {
		t.Fatalf("Simulate() error = %v", err)
	}
	if got := rdb.HGetAll(ctx, keyspace.RoutingLedger(portal)).Val(); !cmp.Equal(liveBefore, got) {
		t.Errorf("Simulate() changed the live ledger:\n%s", cmp.Diff(liveBefore, got))
	}
	if n := rdb.DBSize(ctx).Val(); n != keysBefore {
		t.Errorf("Simulate() changed the key count from %d to %d", keysBefore, n)
	}
	// Every tenth lead is held by the rule; of the other 90, Anna is away, Boris and
	// Vera fill their daily caps (less the lead each got live today) and Gleb takes
	// the rest through the fallback.
	if rep.Leads != 101 || rep.Held != 10 || rep.Assigned != 90 || rep.NotRouted != 0 {
		t.Fatalf("Simulate() = %d leads, %d assigned, %d held, %d not routed; want 101, 90, 10, 0",
			rep.Leads, rep.Assigned, rep.Held, rep.NotRouted)
	}
	want := map[int64]int{2: 19, 3: 9, 4: 62}
	if diff := cmp.Diff(want, rep.PerPerson); diff != "" {
		t.Errorf("per person (-want +got):\n%s", diff)
	}
	if rep.Fallbacks != 62 {
		t.Errorf("fallbacks = %d, want 62 (every lead of Gleb)", rep.Fallbacks)
	}
	if rep.Skips[SkipAbsent] == 0 || rep.Skips[SkipDailyCap] == 0 {
		t.Errorf("skips = %v, want absences and daily caps", rep.Skips)
	}
	if rep.SkipsPerPerson[1][SkipAbsent] != rep.Skips[SkipAbsent] {
		t.Errorf("skips per person = %v, want every absence to be Anna's", rep.SkipsPerPerson)
	}
	if rep.PerRule["partners"] != 10 || rep.PerRule[""] != 90 {
		t.Errorf("per rule = %v, want 10 partners and 90 by default", rep.PerRule)
	}
	// Live, Anna had the last turn: Boris is next without passing over her.
	if first := rep.Decisions[0]; first.UserID != 2 || first.Trace.Entries[0].Params["pos"] != "1" {
		t.Errorf("first simulated lead: %s; want Boris next in turn: the live rotation continues",
			first.Trace.Text("en"))
	}
	if last := rep.Decisions[100]; !last.Repeated || last.UserID != rep.Decisions[0].UserID {
		t.Errorf("repeated lead = %+v, want the first decision again", last)
	}
	total := 0
	for _, n := range rep.PerPerson {
		total += n
	}
	if total != rep.Assigned {
		t.Errorf("per-person counts add up to %d, want %d", total, rep.Assigned)
	}
}

func TestSimulateRejectsInvalidDraft(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	draft := oneTeam("sometimes", 1)
	_, err := e.Simulate(context.Background(), portal, draft, []Lead{{ID: 1}}, people("A"), monday10)
	var verr *ValidationError
	if !errors.As(err, &verr) || verr.Fields["teams[0].strategy"] == "" {
		t.Fatalf("Simulate() error = %v, want a validation error at teams[0].strategy", err)
	}
}

// TestSimulationIsRepeatable runs the same random-strategy simulation twice.
func TestSimulationIsRepeatable(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	var leads []Lead
	for i := range 200 {
		leads = append(leads, Lead{ID: int64(i + 1)})
	}
	draft := oneTeam(Random, 1, 2, 3)
	draft.Teams[0].Members[0].Weight = 3
	var reports []map[int64]int
	for range 2 {
		rep, err := e.Simulate(context.Background(), portal, draft, leads, people("A", "B", "C"),
			monday10)
		if err != nil {
			t.Fatalf("Simulate() error = %v", err)
		}
		reports = append(reports, rep.PerPerson)
	}
	if !cmp.Equal(reports[0], reports[1]) {
		t.Errorf("two runs differ: %v, %v", reports[0], reports[1])
	}
	if a := reports[0][1]; a < 200*3/5-30 || a > 200*3/5+30 {
		t.Errorf("weight 3 of 5 got %d of 200 random leads: %s", a, fmt.Sprint(reports[0]))
	}
}

// TestSimulateLeadsWithoutID treats made-up leads without IDs as distinct leads.
func TestSimulateLeadsWithoutID(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	leads := make([]Lead, 6)
	rep, err := e.Simulate(context.Background(), portal, oneTeam(RoundRobin, 1, 2, 3), leads,
		people("A", "B", "C"), monday10)
	if err != nil {
		t.Fatalf("Simulate() error = %v", err)
	}
	if want := map[int64]int{1: 2, 2: 2, 3: 2}; !cmp.Equal(rep.PerPerson, want) {
		t.Errorf("per person = %v, want %v", rep.PerPerson, want)
	}
}
