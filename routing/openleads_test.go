package routing

import (
	"context"
	"testing"

	"github.com/leadrouter/leadrouter/keyspace"
)

// TestSyncOpenLeads sets open-lead counts from the portal's: other fields of a
// person's entry stay, a lead assigned while the portal counted is kept, people the
// portal did not count keep theirs, and a person new to the ledger gets an entry.
func TestSyncOpenLeads(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := NewEngine(rdb, quietLog())
			ledger := keyspace.RoutingLedger(portal)
			rdb.HSet(ctx, ledger, "u2", "5:1700:20261207:3:4", "u3", "0:0:0:0:2",
				"u4", "1:1:1:1:7")
			before, err := e.OpenLeads(ctx, portal, []int64{2, 3, 4, 5})
			if err != nil {
				t.Fatal(err)
			}
			if before[2] != 4 || before[3] != 2 || before[4] != 7 || before[5] != 0 {
				t.Fatalf("OpenLeads() = %v, want 2:4 3:2 4:7 5:0", before)
			}
			// One lead goes to person 3 while the portal counts.
			rdb.HSet(ctx, ledger, "u3", "0:0:0:0:3")
			counted := map[int64]int64{2: 1, 3: 0, 5: 6}
			if err := e.SyncOpenLeads(ctx, portal, counted, before); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"u2": "5:1700:20261207:3:1", "u3": "0:0:0:0:1",
				"u4": "1:1:1:1:7", "u5": "0:0:0:0:6"}
			for f, w := range want {
				if got := rdb.HGet(ctx, ledger, f).Val(); got != w {
					t.Errorf("ledger %s = %q, want %q", f, got, w)
				}
			}
		})
	}
}

func TestOpenCounted(t *testing.T) {
	t.Parallel()
	s := &Settings{Teams: []Team{
		{ID: "a", Strategy: LeastLoaded, Members: []Member{{UserID: 4}, {UserID: 2}}},
		{ID: "b", Strategy: RoundRobin, Members: []Member{{UserID: 3}, {UserID: 5, OpenCap: 2},
			{UserID: 2, OpenCap: 1}}},
	}}
	got := s.OpenCounted()
	if len(got) != 3 || got[0] != 2 || got[1] != 4 || got[2] != 5 {
		t.Errorf("OpenCounted() = %v, want [2 4 5]", got)
	}
	if ids := (&Settings{Teams: []Team{{Strategy: Weighted,
		Members: []Member{{UserID: 2}}}}}).OpenCounted(); len(ids) != 0 {
		t.Errorf("OpenCounted() without caps or least loaded = %v, want none", ids)
	}
}
