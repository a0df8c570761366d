package queue

import (
	"context"
	"fmt"

	"github.com/leadrouter/leadrouter/bitrix"
)

// OpenCounter keeps the routing ledger's open-lead counts true to the portal.
// *routing.Engine implements it; a Decider without it leaves the counts alone.
type OpenCounter interface {
	OpenLeads(ctx context.Context, memberID string, users []int64) (map[int64]int64, error)
	SyncOpenLeads(ctx context.Context, memberID string, counted, before map[int64]int64) error
}

// countOpen counts on the portal the open leads (STATUS_SEMANTIC_ID "P") of the
// people whose load the settings use, one crm.lead.list a person in batches of 50,
// and sets the ledger's counts to them. Portals whose settings count nobody's
// open leads cost nothing.
func (q *Queue) countOpen(ctx context.Context, memberID string) error {
	counter, ok := q.decider.(OpenCounter)
	if !ok {
		return nil
	}
	settings, _, err := q.decider.Settings(ctx, memberID)
	if err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	users := settings.OpenCounted()
	if len(users) == 0 {
		return nil
	}
	before, err := counter.OpenLeads(ctx, memberID, users)
	if err != nil {
		return err
	}
	cmds := make([]bitrix.Command, len(users))
	for i, id := range users {
		cmds[i] = bitrix.Command{ID: "o" + itoa(id), Method: "crm.lead.list",
			Params: map[string]any{
				"filter": map[string]any{"ASSIGNED_BY_ID": id, "STATUS_SEMANTIC_ID": "P"},
				"select": []string{"ID"},
			}}
	}
	res, err := q.portals.Client(memberID).BatchAll(ctx, cmds, false)
	if err != nil {
		return fmt.Errorf("count open leads: %w", err)
	}
	counted := make(map[int64]int64, len(users))
	for _, id := range users {
		key := "o" + itoa(id)
		if res.Err(key) != nil {
			continue // this person keeps the ledger's count until the next time
		}
		counted[id] = int64(res.Total[key])
	}
	return counter.SyncOpenLeads(ctx, memberID, counted, before)
}
