package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// leadsPerWrite is how many leads one write batch carries: three commands each
// (owner, notification, timeline comment) within the 50-command cap.
const leadsPerWrite = maxBatch / 3

// write sets each unit's recorded owner on the portal, notifies the owner and puts
// the decision's trace on the lead's timeline, in batches. A lead whose owner was
// written is marked so in its record and logged; a failed write leaves the record
// unwritten, so a retry writes the same owner.
func (b *batchRun) write(ctx context.Context, units []*unit) {
	if len(units) == 0 {
		return
	}
	for start := 0; start < len(units); start += leadsPerWrite {
		chunk := units[start:min(start+leadsPerWrite, len(units))]
		if err := b.markOwnWrites(ctx, chunk); err != nil {
			b.failAll(chunk, err)
			continue
		}
		res, err := b.client.Batch(ctx, b.writeCommands(chunk), false)
		if err != nil {
			b.failAll(chunk, err)
			continue
		}
		b.readWrites(chunk, res)
	}
	b.markWritten(ctx, units)
}

// markOwnWrites remembers, before the write, which owner the app is about to set,
// so that the ONCRMLEADUPDATE it causes is recognised as ours.
func (b *batchRun) markOwnWrites(ctx context.Context, units []*unit) error {
	pipe := b.q.rdb.Pipeline()
	for _, u := range units {
		pipe.Set(ctx, keyspace.OwnWrite(b.memberID, u.leadID), b.records[u.leadID].UserID,
			b.q.cfg.OwnWriteTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark own writes: %w", err)
	}
	return nil
}

func (b *batchRun) writeCommands(units []*unit) []bitrix.Command {
	cmds := make([]bitrix.Command, 0, 3*len(units))
	for _, u := range units {
		rec := b.records[u.leadID]
		id := itoa(u.leadID)
		cmds = append(cmds,
			bitrix.Command{ID: "u" + id, Method: "crm.lead.update", Params: map[string]any{
				"id": u.leadID, "fields": map[string]any{"ASSIGNED_BY_ID": rec.UserID},
				"params": map[string]any{"REGISTER_SONET_EVENT": "N"},
			}},
			bitrix.Command{ID: "n" + id, Method: "im.notify.system.add", Params: map[string]any{
				"USER_ID": rec.UserID, "MESSAGE": b.notification(u.leadID),
				"TAG": "leadrouter|lead|" + id,
			}},
			bitrix.Command{ID: "t" + id, Method: "crm.timeline.comment.add", Params: map[string]any{
				"fields": map[string]any{"ENTITY_ID": u.leadID, "ENTITY_TYPE": "lead",
					"COMMENT": timelineText(rec)},
			}},
		)
	}
	return cmds
}

// readWrites sets each unit's result from the write batch's answers. Only the
// owner's update decides the result; a failed notification or comment is logged.
func (b *batchRun) readWrites(units []*unit, res *bitrix.BatchResult) {
	for _, u := range units {
		id := itoa(u.leadID)
		if err := res.Err("u" + id); err != nil {
			u.res = b.classify(err)
			continue
		}
		b.records[u.leadID].Written = true
		for _, c := range []string{"n" + id, "t" + id} {
			if err := res.Err(c); err != nil {
				b.q.log.Warn("lead note failed", "member_id", b.memberID, "lead_id", u.leadID,
					"command", c[:1], "error", err)
			}
		}
	}
}

// markWritten stores the records of the leads whose owner is now on the portal,
// and gives each its line in the assignment log.
func (b *batchRun) markWritten(ctx context.Context, units []*unit) {
	pipe := b.q.rdb.Pipeline()
	n := 0
	for _, u := range units {
		rec := b.records[u.leadID]
		if !rec.Written {
			continue
		}
		raw, _ := json.Marshal(rec)
		pipe.HSet(ctx, keyspace.Routed(b.memberID), itoa(u.leadID), raw)
		u.log = &LogEntry{Time: b.now, LeadID: u.leadID, Outcome: OutcomeAssigned,
			UserID: rec.UserID, Person: rec.Person, RuleID: rec.RuleID, TeamID: rec.TeamID,
			Reason: rec.Trace}
		n++
	}
	if n == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// The owner is on the portal; without the mark, a retry writes it again.
		for _, u := range units {
			if b.records[u.leadID].Written {
				u.res = b.classify(fmt.Errorf("mark lead written: %w", err))
				u.log = nil
			}
		}
	}
}

// notification is the message the new owner receives: a link to the lead.
func (b *batchRun) notification(leadID int64) string {
	link := leadURL(b.portal.ClientEndpoint, leadID)
	if b.lang() == "ru" {
		return fmt.Sprintf("Вам назначен новый лид: [URL=%s]лид #%d[/URL]", link, leadID)
	}
	return fmt.Sprintf("A new lead was assigned to you: [URL=%s]lead #%d[/URL]", link, leadID)
}

// leadURL is the lead's page on the portal, derived from the REST endpoint
// ("https://x.bitrix24.com/rest/" → "https://x.bitrix24.com/crm/lead/details/5/").
func leadURL(clientEndpoint string, leadID int64) string {
	base := strings.TrimSuffix(strings.TrimSuffix(clientEndpoint, "/"), "/rest")
	return fmt.Sprintf("%s/crm/lead/details/%d/", base, leadID)
}

// timelineText is the one line written to the lead's timeline; the trace is in the
// portal's language already.
func timelineText(rec *record) string { return "LeadRouter: " + rec.Trace }
