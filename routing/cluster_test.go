package routing

import (
	"context"
	"fmt"
	"testing"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestDecideOnCluster runs decisions, releases, saves and simulations for several
// portals on a three-master Redis Cluster: every script touches keys of one hash tag
// only, so none fails with CROSSSLOT.
func TestDecideOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.StartCluster(t).Client(t)
	e := NewEngine(rdb, quietLog())
	dir := people("Anna", "Boris")
	for i := range 6 {
		member := fmt.Sprintf("cluster%02d", i)
		if _, err := e.SaveSettings(ctx, member, oneTeam(RoundRobin, 1, 2), 1); err != nil {
			t.Fatalf("SaveSettings() error = %v", err)
		}
		for id := int64(1); id <= 3; id++ {
			d, err := e.Decide(ctx, member, Lead{ID: id}, dir, monday10)
			if err != nil || d.Outcome != Assigned {
				t.Fatalf("Decide() = %s, %v", d.Outcome, err)
			}
			if err := e.Release(ctx, member, d.UserID, id); err != nil {
				t.Fatalf("Release() error = %v", err)
			}
		}
		if _, err := e.Rollback(ctx, member, 1, 2); err != nil {
			t.Fatalf("Rollback() error = %v", err)
		}
		if _, err := e.Simulate(ctx, member, oneTeam(Weighted, 1, 2), []Lead{{ID: 9}}, dir,
			monday10); err != nil {
			t.Fatalf("Simulate() error = %v", err)
		}
	}
}
