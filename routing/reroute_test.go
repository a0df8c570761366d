package routing

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/keyspace"
)

// TestRerouteRoundDecidesOnce decides a lead, then again in a later round: the later
// round gets the next turn once, repeats of either round spend nothing, and the first
// owner's open lead is counted down.
func TestRerouteRoundDecidesOnce(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := NewEngine(rdb, quietLog())
			s := oneTeam(RoundRobin, 1, 2, 3)
			s.Scope.KeepManual = true
			save(t, e, s)
			dir := people("Anna", "Boris", "Vera")
			lead := Lead{ID: 7, AssignedByID: 9, CreatedByID: 9}
			first, err := e.Decide(ctx, portal, lead, dir, monday10)
			if err != nil || first.UserID != 1 {
				t.Fatalf("Decide() = user %d, %v, want Anna (1)", first.UserID, err)
			}
			// Routing set Anna as responsible; a person moved the lead back, so the
			// pipeline asks for round 1. KeepManual must not leave it with Anna.
			lead.AssignedByID, lead.Round = 1, 1
			var got []int64
			for range 3 {
				d, err := e.Decide(ctx, portal, lead, dir, monday10)
				if err != nil {
					t.Fatalf("Decide(round 1) error = %v", err)
				}
				got = append(got, d.UserID)
			}
			if want := []int64{2, 2, 2}; !slices.Equal(got, want) {
				t.Errorf("round 1 decided %v, want %v (one new turn, then repeats)", got, want)
			}
			lead.Round = 0
			if d, _ := e.Decide(ctx, portal, lead, dir, monday10); d.UserID != 2 || !d.Repeated {
				t.Errorf("Decide(round 0) after round 1 = user %d repeated %v, want 2 repeated",
					d.UserID, d.Repeated)
			}
			if next := decide(t, e, 8, dir, monday10); next.UserID != 3 {
				t.Errorf("next lead went to %d, want Vera (3)", next.UserID)
			}
			open := map[int64]string{}
			for _, id := range []int64{1, 2, 3} {
				v, _ := rdb.HGet(ctx, keyspace.RoutingLedger(portal), personField(id)).Result()
				open[id] = v[len(v)-1:]
			}
			if want := map[int64]string{1: "0", 2: "1", 3: "1"}; !cmp.Equal(open, want) {
				t.Errorf("open leads = %v, want %v", open, want)
			}
		})
	}
}

// TestRerouteSettings checks that Needs carries the statuses.
func TestRerouteSettings(t *testing.T) {
	t.Parallel()
	s := oneTeam(RoundRobin, 1)
	if s.Reroute.Enabled() || s.Needs().Reroute != nil {
		t.Fatalf("zero Reroute is enabled: %+v", s.Needs())
	}
	s.Reroute.Statuses = []string{"NEW", "IN_PROCESS"}
	if got := s.Needs().Reroute; !slices.Equal(got, s.Reroute.Statuses) {
		t.Errorf("Needs().Reroute = %v, want %v", got, s.Reroute.Statuses)
	}
	if !s.Reroute.Routes("NEW") || s.Reroute.Routes("JUNK") || s.Reroute.Routes("") {
		t.Errorf("Routes() disagrees with the list %v", s.Reroute.Statuses)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}
