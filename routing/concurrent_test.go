package routing

import (
	"context"
	"sync"
	"testing"
)

// decideConcurrently decides leads 1..n with 8 engines (as 8 app instances would) on
// one Redis, every lead twice from different deciders, and returns each lead's
// decision.
func decideConcurrently(t *testing.T, s *Settings, n int) map[int64]Decision {
	t.Helper()
	rdb := realRedis(t)
	save(t, NewEngine(rdb, quietLog()), s)
	dir := people("Anna", "Boris", "Vera", "Gleb")
	var mu sync.Mutex
	got := map[int64]Decision{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		e := NewEngine(rdb, quietLog())
		wg.Go(func() {
			for i := w; i < 2*n; i += 8 {
				id := int64(i/2 + 1)
				d, err := e.Decide(context.Background(), portal, Lead{ID: id}, dir, monday10)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, ok := got[id]; ok && prev.Outcome == Assigned &&
					(d.UserID != prev.UserID || d.Outcome != Assigned) {
					t.Errorf("lead %d decided twice: user %d, then %s %d",
						id, prev.UserID, d.Outcome, d.UserID)
				}
				if _, ok := got[id]; !ok || d.Outcome == Assigned {
					got[id] = d
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Decide() error = %v", err)
	}
	return got
}

// TestConcurrentDecidersRespectCaps checks that 8 concurrent deciders never break a
// daily cap, and fill every cap exactly.
func TestConcurrentDecidersRespectCaps(t *testing.T) {
	t.Parallel()
	s := oneTeam(LeastLoaded, 1, 2, 3, 4)
	for i := range s.Teams[0].Members {
		s.Teams[0].Members[i].DailyCap = 6
	}
	got := decideConcurrently(t, s, 200)
	counts := map[int64]int{}
	for _, d := range got {
		if d.Outcome == Assigned {
			counts[d.UserID]++
		}
	}
	for id := int64(1); id <= 4; id++ {
		if counts[id] != 6 {
			t.Errorf("user %d got %d leads, want exactly the cap of 6 (counts %v)", id, counts[id], counts)
		}
	}
}

// TestConcurrentDecidersShareTurns checks that concurrent deciders never give two
// leads the same round-robin turn: 400 leads over 4 people is exactly 100 each.
func TestConcurrentDecidersShareTurns(t *testing.T) {
	t.Parallel()
	got := decideConcurrently(t, oneTeam(RoundRobin, 1, 2, 3, 4), 400)
	counts := map[int64]int{}
	for _, d := range got {
		counts[d.UserID]++
	}
	for id := int64(1); id <= 4; id++ {
		if counts[id] != 100 {
			t.Errorf("user %d got %d leads, want 100 (counts %v)", id, counts[id], counts)
		}
	}
}
