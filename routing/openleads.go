package routing

import (
	"context"
	_ "embed"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Open leads. Each assignment counts one open lead up in the person's ledger entry,
// and a re-route counts the previous owner down; leads people close, convert or give
// to somebody else are seen only on the portal. The pipeline therefore counts every
// counted person's open leads on the portal now and then (OpenLeads, then
// SyncOpenLeads), which also takes in leads LeadRouter never assigned.

//go:embed openleads.lua
var openLeadsSource string

var openLeadsScript = redis.NewScript(openLeadsSource)

// OpenCounted returns the people whose open leads the settings use: the members of
// least-loaded teams and everyone with an open-lead cap, in ID order.
func (s *Settings) OpenCounted() []int64 {
	var ids []int64
	for _, t := range s.Teams {
		for _, m := range t.Members {
			if (t.Strategy == LeastLoaded || m.OpenCap > 0) && !slices.Contains(ids, m.UserID) {
				ids = append(ids, m.UserID)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// OpenLeads returns the open-lead counts the ledger holds for users.
func (e *Engine) OpenLeads(ctx context.Context, memberID string,
	users []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(users))
	if len(users) == 0 {
		return out, nil
	}
	fields := make([]string, len(users))
	for i, id := range users {
		fields[i] = personField(id)
	}
	vals, err := e.rdb.HMGet(ctx, keyspace.RoutingLedger(memberID), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read open leads of portal %s: %w", memberID, err)
	}
	for i, v := range vals {
		s, _ := v.(string)
		out[users[i]] = parseRecord(s).Open
	}
	return out, nil
}

// SyncOpenLeads sets the open-lead counts of people to counted, what the portal
// counted; before is what OpenLeads returned just before the portal counted, so
// that leads assigned meanwhile are not lost. People missing from counted keep
// their counts.
func (e *Engine) SyncOpenLeads(ctx context.Context, memberID string,
	counted, before map[int64]int64) error {
	if len(counted) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(counted))
	for id, n := range counted {
		args = append(args, id, max(n, 0), before[id])
	}
	err := openLeadsScript.Run(ctx, e.rdb, []string{keyspace.RoutingLedger(memberID)}, args...).Err()
	if err != nil {
		return fmt.Errorf("set open leads of portal %s: %w", memberID, err)
	}
	return nil
}
