package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/routing"
)

// Response deadlines (routing.Team.Deadline): when the pipeline writes the owner of
// a lead that a team with a deadline assigned, it schedules a check of the lead in
// keyspace.Deadlines for the moment the deadline passes, in the transaction that
// marks the lead's record written. Workers take due checks as they take due held
// leads, and read their leads in the turn's read batch. A lead its owner has not
// taken up (its STATUS_ID is still the one it was assigned in, and its owner is
// still the person the app wrote) is decided again in its next round, within its
// team and without everyone who missed its deadline so far (record.Missed), and
// written as usual; the decision script and the claim script keep one decision per
// round, so a check that runs twice passes the lead on once. The time a check is due
// comes from the lead's record (when its owner was written, plus the team's
// minutes), so a check taken early or again after a pass only waits for the new
// owner's deadline. A lead the intake webhook created with its owner gets its check
// with its record (RecordCreated), due from its creation.

// sourceDeadline is the event of a unit that is a due deadline check.
const sourceDeadline = "deadline"

// isCheck reports whether the unit is a due deadline check rather than an event.
func (u *unit) isCheck() bool { return u.event == sourceDeadline }

// addChecks adds the due deadline checks of leads that have no unit yet. A lead
// with events in this turn keeps its check for a later turn, so that its events are
// treated as usual.
func addChecks(units []*unit, due []string) []*unit {
	for _, s := range due {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(units, func(u *unit) bool { return u.leadID == id }) {
			units = append(units, &unit{leadID: id, event: sourceDeadline})
		}
	}
	return units
}

// deadline returns the deadline that watches the lead of rec, or nil when none
// does: no record, a team without a deadline (or gone), or no passes left.
func (b *batchRun) deadline(rec *record) *routing.Deadline {
	if rec == nil {
		return nil
	}
	dl := b.settings.TeamDeadline(rec.TeamID)
	if dl == nil || !dl.Passes(len(rec.Missed)) {
		return nil
	}
	return dl
}

// dueCheck triages a deadline check and reports whether its lead must be read. A
// check that is early waits for its time; a pass decided but not written (the turn
// that decided it died) is written now, and its write schedules the next check.
func (b *batchRun) dueCheck(u *unit, rec *record) bool {
	u.res = result{kind: settled}
	dl := b.deadline(rec)
	switch {
	case dl == nil:
		return false
	case !rec.Written || !rec.Noted:
		u.checkAt = b.now.Add(dl.Window())
		return false
	}
	if due := rec.WrittenAt.Add(dl.Window()); due.After(b.now) {
		u.checkAt = due
		return false
	}
	return true
}

// passOn settles the checked leads that were taken up or given to somebody else by
// hand, and sets up the others to be passed on. It returns the units to decide.
func (b *batchRun) passOn(units []*unit, leads map[int64]map[string]json.RawMessage) []*unit {
	var decide []*unit
	for _, u := range units {
		if !u.isCheck() {
			decide = append(decide, u)
			continue
		}
		rec, lead := b.records[u.leadID], leads[u.leadID]
		owner, _ := strconv.ParseInt(scalar(lead["ASSIGNED_BY_ID"]), 10, 64)
		switch {
		case owner != rec.UserID:
			b.q.log.Debug("deadline check: owner changed by hand", "member_id", b.memberID,
				"lead_id", u.leadID, "user_id", owner)
		case rec.takenUp(lead):
			b.q.log.Debug("deadline check: lead taken up", "member_id", b.memberID,
				"lead_id", u.leadID, "user_id", owner)
		default:
			u.round = rec.Round + 1
			u.exclude = append(slices.Clip(rec.Missed), rec.UserID)
			u.passTeam = rec.TeamID
			decide = append(decide, u)
		}
	}
	return decide
}

// takenUp reports whether the lead's status changed since its owner was given it:
// it is no longer the status the lead was assigned in, or, for a lead created in
// the portal's default status, the lead moved since it was created.
func (r *record) takenUp(lead map[string]json.RawMessage) bool {
	if r.DueCreated {
		return movedSinceCreated(lead)
	}
	return scalar(lead["STATUS_ID"]) != r.dueStatus()
}

// movedSinceCreated reports whether the lead's status changed after its creation:
// its MOVED_TIME is later than its DATE_CREATE. Both have whole seconds, so a change
// within the second the lead was created is not seen. A lead whose times cannot be
// read counts as moved, and stays with its owner.
func movedSinceCreated(lead map[string]json.RawMessage) bool {
	created, err := time.Parse(time.RFC3339, scalar(lead["DATE_CREATE"]))
	if err != nil {
		return true
	}
	moved, err := time.Parse(time.RFC3339, scalar(lead["MOVED_TIME"]))
	return err != nil || moved.After(created)
}

// dueStatus is the status whose change counts as taking the lead up.
func (r *record) dueStatus() string {
	if r.DueStatus != "" {
		return r.DueStatus
	}
	return r.Status
}

// scheduleChecks queues, for every unit whose owner this turn wrote, the check of
// its deadline when its team has one and the lead may still be passed on.
func (b *batchRun) scheduleChecks(ctx context.Context, pipe redis.Pipeliner, units []*unit) {
	for _, u := range units {
		rec := b.records[u.leadID]
		if dl := b.deadline(rec); u.wroteOwner && dl != nil {
			due := rec.WrittenAt.Add(dl.Window())
			pipe.ZAdd(ctx, keyspace.Deadlines(b.memberID),
				redis.Z{Score: float64(due.UnixMilli()), Member: itoa(u.leadID)})
		}
	}
}

// closeChecks turns what became of the turn's deadline checks into a time to look
// again, or the end of the check, before the turn is settled: a check is not an
// event, so it is never re-queued on the stream, held or dead-lettered.
func (q *Queue) closeChecks(memberID string, units []*unit) {
	now := q.cfg.Now()
	for _, u := range units {
		if !u.isCheck() {
			continue
		}
		switch u.res.kind {
		case retry, held:
			u.checkAt = now.Add(q.backoff(u.attempt))
			if u.res.reason == reasonMethodBlocked && u.res.until.After(u.checkAt) {
				u.checkAt = u.res.until
			}
		case dead:
			q.log.Warn("deadline check failed", "member_id", memberID, "lead_id", u.leadID,
				"reason", u.res.reason, "error", u.res.err)
		case settled:
			if u.passTeam != "" && u.log != nil && u.log.Outcome == OutcomeNotRouted {
				q.log.Info("lead stays with its owner after its deadline",
					"member_id", memberID, "lead_id", u.leadID, "reason", u.log.Skip)
			}
		}
		u.res = result{kind: settled}
	}
}

// settleChecks moves the turn's deadline checks to their next time or removes
// them. A check whose lead this turn passed on was rescheduled with the new owner's
// record and is left alone.
func (q *Queue) settleChecks(ctx context.Context, memberID string, units []*unit) error {
	key := keyspace.Deadlines(memberID)
	pipe := q.rdb.Pipeline()
	for _, u := range units {
		switch {
		case !u.isCheck(), u.wroteOwner:
		case !u.checkAt.IsZero():
			pipe.ZAdd(ctx, key, redis.Z{Score: float64(u.checkAt.UnixMilli()),
				Member: itoa(u.leadID)})
		default:
			pipe.ZRem(ctx, key, itoa(u.leadID))
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("settle deadline checks of portal %s: %w", memberID, err)
	}
	return nil
}
