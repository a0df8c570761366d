package queue

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Re-routing (routing.Settings.Reroute): an update of a routed lead, or a held
// re-route coming due, is read, and the lead is routed again in the next round when
// a person moved it into one of the listed statuses since the app's decision. The
// lead's record keeps the MOVED_TIME it was decided at and the status last seen, so
// the app's own write (which moves nothing) and duplicated deliveries of one move
// never route it twice: after the re-route the record holds the new MOVED_TIME.
// MOVED_TIME has whole seconds, so a lead moved away and back within one second is
// caught by its status seen in between, when the update that moved it away was read
// before the lead came back.

// recheck settles the rechecked units whose lead no person moved into a re-routing
// status, and sets the round of those that did. It returns the units to decide.
func (b *batchRun) recheck(ctx context.Context, units []*unit,
	leads map[int64]map[string]json.RawMessage) []*unit {
	var decide []*unit
	var seen []any
	for _, u := range units {
		if !u.recheck {
			decide = append(decide, u)
			continue
		}
		rec := b.records[u.leadID]
		status := scalar(leads[u.leadID]["STATUS_ID"])
		moved := scalar(leads[u.leadID]["MOVED_TIME"])
		if b.settings.Reroute.Routes(status) && b.movedSince(rec, moved) {
			u.round = rec.Round + 1
			decide = append(decide, u)
			continue
		}
		u.res = result{kind: settled, reason: b.routedReason(u, rec)}
		if next, changed := seenNow(rec, leads[u.leadID], b.now); changed {
			old, _ := json.Marshal(rec)
			raw, _ := json.Marshal(next)
			seen = append(seen, itoa(u.leadID), old, raw)
		}
	}
	if len(seen) > 0 {
		// Losing this note costs the detection of a move within one second, or one
		// change of owner on the lead's tab; a record another worker changed in the
		// meantime keeps that worker's note of the same update.
		err := swapScript.Run(ctx, b.q.rdb, []string{keyspace.Routed(b.memberID)}, seen...).Err()
		if err != nil {
			b.q.log.Warn("note lead status failed", "member_id", b.memberID, "error", err)
		}
	}
	return decide
}

// seenNow returns the record with the lead's status and owner as read now, and
// whether either changed; a new owner is added to the record's moves, at the
// lead's DATE_MODIFY (now when the portal gave none).
func seenNow(rec *record, lead map[string]json.RawMessage, now time.Time) (*record, bool) {
	next := *rec
	next.Status = scalar(lead["STATUS_ID"])
	owner, _ := strconv.ParseInt(scalar(lead["ASSIGNED_BY_ID"]), 10, 64)
	moved := owner != 0 && owner != rec.owner()
	if moved {
		by, _ := strconv.ParseInt(scalar(lead["MODIFY_BY_ID"]), 10, 64)
		at, err := time.Parse(time.RFC3339, scalar(lead["DATE_MODIFY"]))
		if err != nil {
			at = now
		}
		// DATE_MODIFY has whole seconds, and the portal's clock is not the app's:
		// a move never comes before the decision or the move it follows.
		at = latest(at, rec.At)
		if n := len(rec.Moves); n > 0 {
			at = latest(at, rec.Moves[n-1].At)
		}
		next.Moves = append(slices.Clip(rec.Moves), Move{At: at, From: rec.owner(), To: owner, By: by})
		if len(next.Moves) > maxMoves {
			next.Moves = next.Moves[len(next.Moves)-maxMoves:]
		}
		next.Owner = owner
		if owner == rec.UserID {
			next.Owner = 0
		}
	}
	return &next, moved || next.Status != rec.Status
}

// movedSince reports whether a lead now in a re-routing status at MOVED_TIME moved
// came there since its record was decided: it was last seen in a status that does
// not re-route, or its MOVED_TIME changed. A record without them (intake wrote it)
// compares the time with the decision's.
func (b *batchRun) movedSince(rec *record, moved string) bool {
	switch {
	case rec.Status != "" && !b.settings.Reroute.Routes(rec.Status):
		return true
	case rec.Moved != "":
		return rec.Moved != moved
	}
	t, err := time.Parse(time.RFC3339, moved)
	return err == nil && t.After(rec.At)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// swapScript replaces lead records that still hold the expected value.
//
// KEYS[1] the portal's lead records (keyspace.Routed)
// ARGV    lead ID, expected JSON, new JSON, ...
//
// Returns the number of records replaced.
var swapScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
`)
