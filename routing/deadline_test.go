package routing

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// deadlineTeam is a round-robin team of Anna, Boris and Vera with a 30-minute
// deadline, falling back to Grigory, who is in no team.
func deadlineTeam() *Settings {
	s := oneTeam(RoundRobin, 1, 2, 3)
	s.Teams[0].Deadline = &Deadline{Minutes: 30}
	s.Teams[0].Fallback = Target{Kind: TargetPerson, User: 4}
	return s
}

// TestPassOnSkipsWhoMissed decides a lead, then passes it on after missed deadlines:
// each pass goes to the next person of the team, never back to who missed it, says
// why in both languages, is decided once per round, and when nobody else in the team
// can take the lead it stays with its owner instead of falling back or being held.
func TestPassOnSkipsWhoMissed(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := NewEngine(rdb, quietLog())
			save(t, e, deadlineTeam())
			dir := people("Anna", "Boris", "Vera", "Grigory")
			if d := decide(t, e, 7, dir, monday10); d.UserID != 1 {
				t.Fatalf("Decide() = user %d, want Anna (1)", d.UserID)
			}
			pass := func(round int, exclude ...int64) Decision {
				t.Helper()
				l := Lead{ID: 7, AssignedByID: exclude[len(exclude)-1], Round: round,
					Exclude: exclude, PassTeam: "sales"}
				d, err := e.Decide(ctx, portal, l, dir, monday10)
				if err != nil {
					t.Fatalf("Decide(pass %d) error = %v", round, err)
				}
				return d
			}

			d := pass(1, 1)
			if d.Outcome != Assigned || d.UserID != 2 || d.TeamID != "sales" {
				t.Fatalf("first pass = %s to %d in %q, want Boris (2) in sales",
					d.Outcome, d.UserID, d.TeamID)
			}
			wantEn := "Assigned to Boris: next in turn in team “Sales”; not taken up within " +
				"30 minutes, passed on in team “Sales”; skipped: Anna — missed the response " +
				"deadline."
			if got := d.Trace.Text("en"); got != wantEn {
				t.Errorf("Text(en) = %q\nwant %q", got, wantEn)
			}
			if got := d.Trace.Text("ru"); !strings.Contains(got, "Anna — не взял лид в работу "+
				"вовремя") || !strings.Contains(got, "не взят в работу за 30 мин.") {
				t.Errorf("Text(ru) = %q, want the missed deadline and the pass", got)
			}
			if again := pass(1, 1); again.UserID != 2 || !again.Repeated {
				t.Errorf("first pass again = user %d repeated %v, want Boris repeated",
					again.UserID, again.Repeated)
			}

			if d := pass(2, 1, 2); d.UserID != 3 {
				t.Fatalf("second pass = user %d, want Vera (3)", d.UserID)
			}
			d = pass(3, 1, 2, 3)
			if d.Outcome != NotRouted || d.UserID != 0 {
				t.Fatalf("third pass = %s to %d, want not routed (no fallback to Grigory)",
					d.Outcome, d.UserID)
			}
			if got := d.Trace.Entries[0].Params["reason"]; got != NotPassedOn {
				t.Errorf("third pass reason = %q, want %q", got, NotPassedOn)
			}
			if got := d.Trace.Text("en"); !strings.Contains(got, "nobody else in team “Sales” "+
				"can take it, so it stays with its owner") {
				t.Errorf("Text(en) = %q, want it to say the lead stays", got)
			}
			if next := decide(t, e, 8, dir, monday10); next.UserID != 1 {
				t.Errorf("next new lead = user %d, want Anna (1): passes follow the turn",
					next.UserID)
			}
		})
	}
}

// TestPassOnAmongEligible passes a lead on when the only other member is absent:
// absence and the missed deadline are both named, and the lead stays.
func TestPassOnAmongEligible(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	s := oneTeam(RoundRobin, 1, 2)
	s.Teams[0].Deadline = &Deadline{Minutes: 5}
	save(t, e, s)
	dir := people("Anna", "Boris")
	decide(t, e, 7, dir, monday10)
	boris := dir.People[2]
	boris.AbsentUntil = monday10.AddDate(0, 0, 2)
	dir.People[2] = boris
	d, err := e.Decide(context.Background(), portal, Lead{ID: 7, AssignedByID: 1, Round: 1,
		Exclude: []int64{1}, PassTeam: "sales"}, dir, monday10)
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if d.Outcome != NotRouted {
		t.Fatalf("Decide() = %s to %d, want not routed", d.Outcome, d.UserID)
	}
	got := map[string]string{}
	for _, en := range d.Trace.Entries {
		if en.Code == CodeSkipped {
			got[en.Params["name"]] = en.Params["reason"]
		}
	}
	want := map[string]string{"Anna": SkipMissedDeadline, "Boris": SkipAbsent}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// TestExcludeInAnyDecision checks that excluded people are skipped in an ordinary
// decision too, fallbacks included.
func TestExcludeInAnyDecision(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	save(t, e, deadlineTeam())
	dir := people("Anna", "Boris", "Vera", "Grigory")
	d, err := e.Decide(context.Background(), portal, Lead{ID: 9, Exclude: []int64{1, 2, 3}},
		dir, monday10)
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if d.Outcome != Assigned || d.UserID != 4 {
		t.Errorf("Decide() = %s to %d, want the fallback Grigory (4)", d.Outcome, d.UserID)
	}
	d, err = e.Decide(context.Background(), portal, Lead{ID: 10, Exclude: []int64{1, 2, 3, 4}},
		dir, monday10)
	if err != nil || d.Outcome != Held {
		t.Errorf("Decide(all excluded) = %s, %v; want held", d.Outcome, err)
	}
}

// TestDeadlineSettings checks the deadline's JSON, its helpers, and that a
// simulation ignores it.
func TestDeadlineSettings(t *testing.T) {
	t.Parallel()
	s := deadlineTeam()
	s.Teams[0].Deadline.MaxPasses = 2
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"deadline":{"minutes":30,"max_passes":2}`) {
		t.Errorf("Marshal() = %s, want the deadline", raw)
	}
	var back Settings
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, &back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	dl := back.TeamDeadline("sales")
	if dl == nil || !dl.Passes(1) || dl.Passes(2) || back.TeamDeadline("nobody") != nil {
		t.Errorf("TeamDeadline() = %+v: want passes allowed below 2 only", dl)
	}
	if !(&Deadline{Minutes: 1}).Passes(1000) {
		t.Error("Passes() with no maximum = false, want true")
	}

	plain := deadlineTeam()
	plain.Teams[0].Deadline = nil
	dir := people("Anna", "Boris", "Vera", "Grigory")
	leads := []Lead{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}}
	with := simulate(s, ledger{}, leads, dir, monday10)
	without := simulate(plain, ledger{}, leads, dir, monday10)
	if diff := cmp.Diff(without.PerPerson, with.PerPerson); diff != "" {
		t.Errorf("simulation with a deadline differs (-without +with):\n%s", diff)
	}
}
