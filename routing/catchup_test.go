package routing

import (
	"context"
	"testing"
	"time"
)

// run decides leads from..to with the engine and returns who got each.
func run(t *testing.T, e *Engine, from, to int64, dir Directory) []int64 {
	t.Helper()
	var got []int64
	for id := from; id <= to; id++ {
		d := decide(t, e, id, dir, monday10.Add(time.Duration(id)*time.Minute))
		if d.Outcome != Assigned {
			t.Fatalf("lead %d: %s, want assigned; %s", id, d.Outcome, d.Trace.Text("en"))
		}
		got = append(got, d.UserID)
	}
	return got
}

func count(ids []int64, id int64) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

// longestRun returns the longest run of id in ids.
func longestRun(ids []int64, id int64) int {
	best, cur := 0, 0
	for _, x := range ids {
		if x == id {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}

// TestReturnerIsNeitherStarvedNorFlooded sends a person away for 100 leads and
// checks, for every strategy that keeps history, that on return they get about
// their share: not the leads they missed, and not nothing.
func TestReturnerIsNeitherStarvedNorFlooded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		strategy string
		maxRun   int // the most leads in a row the returner may get
		min, max int // how many of the 60 leads after the return they may get
	}{
		{name: "weighted", strategy: Weighted, maxRun: 2, min: 12, max: 18},
		{name: "round robin", strategy: RoundRobin, maxRun: 1, min: 14, max: 16},
		{name: "longest waiting", strategy: LongestWaiting, maxRun: 1, min: 14, max: 16},
		// Least loaded evens out open leads, so the returner catches up, but at most
		// every other lead.
		{name: "least loaded", strategy: LeastLoaded, maxRun: DefaultMaxStreak, min: 15, max: 31},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(realRedis(t), quietLog())
			save(t, e, oneTeam(tt.strategy, 1, 2, 3, 4))
			dir := people("Anna", "Boris", "Vera", "Gleb")
			away := dir.People[4]
			away.AbsentUntil = monday10.AddDate(0, 1, 0)
			dir.People[4] = away
			before := run(t, e, 1, 100, dir)
			if n := count(before, 4); n != 0 {
				t.Fatalf("absent Gleb got %d leads", n)
			}
			away.AbsentUntil = time.Time{}
			dir.People[4] = away
			after := run(t, e, 101, 160, dir)
			n := count(after, 4)
			if n < tt.min || n > tt.max {
				t.Errorf("returner got %d of 60 leads, want %d to %d: %v", n, tt.min, tt.max, after)
			}
			if r := longestRun(after, 4); r > tt.maxRun {
				t.Errorf("returner got %d leads in a row, want at most %d: %v", r, tt.maxRun, after)
			}
		})
	}
}

// TestChangesKeepHistory edits a team (weights, a newcomer, a removal) between runs
// and checks that the rotation goes on where it was instead of starting over.
func TestChangesKeepHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("round robin continues after a removal", func(t *testing.T) {
		e := NewEngine(realRedis(t), quietLog())
		s := oneTeam(RoundRobin, 1, 2, 3, 4)
		save(t, e, s)
		dir := people("Anna", "Boris", "Vera", "Gleb")
		got := run(t, e, 1, 2, dir) // Anna, Boris
		s.Teams[0].Members = append(s.Teams[0].Members[:1], s.Teams[0].Members[2:]...)
		save(t, e, s) // Boris leaves: the turn after him is Vera's
		got = append(got, run(t, e, 3, 5, dir)...)
		want := []int64{1, 2, 3, 4, 1}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("turns = %v, want %v", got, want)
			}
		}
	})
	t.Run("weighted newcomer starts at the team's position", func(t *testing.T) {
		e := NewEngine(realRedis(t), quietLog())
		s := oneTeam(Weighted, 1, 2, 3)
		save(t, e, s)
		dir := people("Anna", "Boris", "Vera", "Gleb")
		run(t, e, 1, 90, dir)
		s.Teams[0].Members = append(s.Teams[0].Members, Member{UserID: 4, Weight: 1})
		s.Teams[0].Members[0].Weight = 2 // Anna's weight doubles at the same time
		if _, err := e.SaveSettings(ctx, portal, s, 1); err != nil {
			t.Fatalf("SaveSettings() error = %v", err)
		}
		after := run(t, e, 91, 190, dir)
		weights := map[int64]int{1: 2, 2: 1, 3: 1, 4: 1}
		for id, w := range weights {
			ideal := 100 * w / 5
			if n := count(after, id); n < ideal-2 || n > ideal+2 {
				t.Errorf("user %d got %d of 100 leads after the change, want %d±2: %v",
					id, n, ideal, after)
			}
		}
		if r := longestRun(after[:10], 4); r > 1 {
			t.Errorf("newcomer got %d leads in a row at first: %v", r, after[:10])
		}
	})
}
