package routing

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestStrategiesChoose checks whom least loaded and longest waiting choose when the
// people differ, against the same leads under round robin, which ignores both.
func TestStrategiesChoose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := people("Anna", "Boris", "Vera")
	at := func(minute int) time.Time { return monday10.Add(time.Duration(minute) * time.Minute) }
	decideAll := func(t *testing.T, e *Engine, from, to int64) []int64 {
		t.Helper()
		var got []int64
		for id := from; id <= to; id++ {
			d := decide(t, e, id, dir, at(int(id)))
			got = append(got, d.UserID)
		}
		return got
	}

	t.Run("least loaded takes the fewest open leads, then the longest waiting", func(t *testing.T) {
		for name, rdb := range backends(t) {
			t.Run(name, func(t *testing.T) {
				e := NewEngine(rdb, quietLog())
				save(t, e, oneTeam(LeastLoaded, 1, 2, 3))
				err := e.SyncOpenLeads(ctx, portal, map[int64]int64{1: 3, 2: 1, 3: 2},
					map[int64]int64{})
				if err != nil {
					t.Fatal(err)
				}
				// Boris has the fewest; then Boris and Vera have two each and Vera
				// waited longer; then Boris again.
				if got, want := decideAll(t, e, 1, 3), []int64{2, 3, 2}; !slices.Equal(got, want) {
					t.Errorf("least loaded chose %v, want %v", got, want)
				}
			})
		}
	})

	// Anna and Boris share leads 1–3; then Vera joins. Longest waiting goes by
	// the time since each one's last lead from the team: Vera, who never had one,
	// then Boris, then Anna. Round robin goes on with its turn.
	for _, tc := range []struct {
		strategy string
		want     []int64
	}{
		{LongestWaiting, []int64{3, 2, 1}},
		{RoundRobin, []int64{2, 3, 1}},
	} {
		t.Run(tc.strategy+" after a member joins", func(t *testing.T) {
			e := NewEngine(realRedis(t), quietLog())
			save(t, e, oneTeam(tc.strategy, 1, 2))
			if got := decideAll(t, e, 1, 3); !slices.Equal(got, []int64{1, 2, 1}) {
				t.Fatalf("first leads = %v, want [1 2 1]", got)
			}
			save(t, e, oneTeam(tc.strategy, 1, 2, 3))
			if got := decideAll(t, e, 4, 6); !slices.Equal(got, tc.want) {
				t.Errorf("%s after Vera joined chose %v, want %v", tc.strategy, got, tc.want)
			}
		})
	}
}
