package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/leadrouter/leadrouter/keyspace"
)

// TestScriptAndSimulationAgree runs the same random scenarios through the decision
// script (on miniredis and on a real redis-server) and through the Go ledger the
// simulation uses, and requires the same decisions and the same final ledger.
func TestScriptAndSimulationAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, rdb := range backends(t) {
		seeds := uint64(12)
		if name == "miniredis" {
			seeds = 4 // its Lua is slower; the real server runs the full set
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for seed := uint64(1); seed <= seeds; seed++ {
				member := fmt.Sprintf("agree%02d", seed)
				sc := newScenario(seed, false)
				e := NewEngineOptions(rdb, quietLog(), Options{
					Rand: rand.New(rand.NewPCG(seed, 1)).Float64})
				if _, err := e.SaveSettings(ctx, member, sc.settings, 1); err != nil {
					t.Fatalf("seed %d: SaveSettings() error = %v", seed, err)
				}
				mirror := ledger{}
				goRand := rand.New(rand.NewPCG(seed, 1)).Float64
				pats := compilePatterns(sc.settings)
				assigned := 0
				for i := int64(1); i <= 300; i++ {
					sc.tick()
					l := sc.lead(i)
					got, err := e.Decide(ctx, member, l, sc.dir, sc.now)
					if err != nil {
						t.Fatalf("seed %d: Decide(%d) error = %v", seed, i, err)
					}
					want := simulateOne(sc.settings, mirror, &l, sc.dir, sc.now, pats, goRand)
					if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Decision{},
						"SettingsVersion")); diff != "" {
						t.Fatalf("seed %d lead %d: script and simulation differ (-sim +script):\n%s",
							seed, i, diff)
					}
					if got.Outcome == Assigned {
						assigned++
					}
				}
				if assigned == 0 {
					t.Fatalf("seed %d: no lead was assigned; the scenario tests nothing", seed)
				}
				stored, err := rdb.HGetAll(ctx, keyspace.RoutingLedger(member)).Result()
				if err != nil {
					t.Fatalf("HGetAll() error = %v", err)
				}
				if diff := cmp.Diff(map[string]string(mirror), stored); diff != "" {
					t.Fatalf("seed %d: ledgers differ (-sim +redis):\n%s", seed, diff)
				}
			}
		})
	}
}
