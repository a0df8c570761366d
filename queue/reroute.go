package queue

import (
	"context"
	"encoding/json"
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
		if status != rec.Status {
			old, _ := json.Marshal(rec)
			next := *rec
			next.Status = status
			raw, _ := json.Marshal(&next)
			seen = append(seen, itoa(u.leadID), old, raw)
		}
	}
	if len(seen) > 0 {
		// Losing this note costs only the detection of a move within one second.
		err := swapScript.Run(ctx, b.q.rdb, []string{keyspace.Routed(b.memberID)}, seen...).Err()
		if err != nil {
			b.q.log.Warn("note lead status failed", "member_id", b.memberID, "error", err)
		}
	}
	return decide
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
