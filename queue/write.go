package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// write sets each unit's recorded owner on the portal, notifies the owner and puts
// the decision's trace on the lead's timeline: three commands per lead, packed into
// as few batches as the 50-command cap allows. A lead whose owner was written is
// marked so in its record and logged; a failed write leaves the record unwritten,
// so a retry writes the same owner.
func (b *batchRun) write(ctx context.Context, units []*unit) {
	if len(units) == 0 {
		return
	}
	cmds := b.writeCommands(units)
	res := &bitrix.BatchResult{Result: map[string]json.RawMessage{},
		Errors: map[string]*bitrix.Error{}}
	failed := map[string]error{}
	for start := 0; start < len(cmds); start += maxBatch {
		chunk := cmds[start:min(start+maxBatch, len(cmds))]
		r, err := b.client.Batch(ctx, chunk, false)
		if err != nil {
			for _, c := range chunk {
				failed[c.ID] = err
			}
			continue
		}
		for k, v := range r.Result {
			res.Result[k] = v
		}
		for k, v := range r.Errors {
			res.Errors[k] = v
		}
	}
	b.readWrites(units, res, failed)
	b.markWritten(ctx, units)
}

func (b *batchRun) writeCommands(units []*unit) []bitrix.Command {
	cmds := make([]bitrix.Command, 0, 3*len(units))
	// The owner's update comes first: the notification and comment follow it.
	for _, u := range units {
		rec := b.records[u.leadID]
		id := itoa(u.leadID)
		if !rec.Written {
			cmds = append(cmds, bitrix.Command{ID: "u" + id, Method: "crm.lead.update",
				Params: map[string]any{
					"id": u.leadID, "fields": map[string]any{"ASSIGNED_BY_ID": rec.UserID},
					"params": map[string]any{"REGISTER_SONET_EVENT": "N"},
				}})
		}
		cmds = append(cmds,
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

// readWrites sets each unit's result from the write batches' answers; failed holds
// the commands whose whole batch failed. A temporary failure of the notification
// or the comment retries them (and only them) later; a permanent one is logged and
// given up, so that a portal without the im scope still gets its leads routed.
func (b *batchRun) readWrites(units []*unit, res *bitrix.BatchResult, failed map[string]error) {
	errOf := func(id string) error {
		if err := failed[id]; err != nil {
			return err
		}
		return res.Err(id)
	}
	for _, u := range units {
		id := itoa(u.leadID)
		rec := b.records[u.leadID]
		if !rec.Written {
			if err := errOf("u" + id); err != nil {
				u.res = b.classify(err)
				continue
			}
			rec.Written, rec.WrittenAt, u.wroteOwner = true, b.now, true
		}
		var retryErr error
		for _, c := range []string{"n" + id, "t" + id} {
			err := errOf(c)
			switch {
			case err == nil:
			case bitrix.Temporary(err):
				retryErr = err
			default:
				b.q.log.Warn("lead note failed", "member_id", b.memberID, "lead_id", u.leadID,
					"command", c[:1], "error", err)
			}
		}
		if retryErr != nil {
			u.res = b.classify(fmt.Errorf("notify owner: %w", retryErr))
			continue
		}
		rec.Noted = true
	}
}

// markWritten stores, in one transaction, the records that changed (owner written,
// owner notified) and the deadline checks of the owners written, and gives each
// lead whose owner was written its log line.
func (b *batchRun) markWritten(ctx context.Context, units []*unit) {
	var pairs []any
	var changed []*unit
	for _, u := range units {
		rec := b.records[u.leadID]
		if !u.wroteOwner && !rec.Noted {
			continue
		}
		raw, _ := json.Marshal(rec)
		pairs = append(pairs, itoa(u.leadID), raw)
		changed = append(changed, u)
		if u.wroteOwner {
			u.log = &LogEntry{Time: b.now, LeadID: u.leadID, Outcome: OutcomeAssigned,
				UserID: rec.UserID, Person: rec.Person, RuleID: rec.RuleID, TeamID: rec.TeamID,
				Reason: rec.Trace, Skipped: rec.Skipped}
		}
	}
	if len(pairs) == 0 {
		return
	}
	pipe := b.q.rdb.TxPipeline()
	pipe.HSet(ctx, keyspace.Routed(b.memberID), pairs...)
	b.scheduleChecks(ctx, pipe, changed)
	if _, err := pipe.Exec(ctx); err != nil {
		// The owner is on the portal; without the mark, a retry writes it again.
		for _, u := range changed {
			u.res = b.classify(fmt.Errorf("mark lead written: %w", err))
			u.log = nil
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
