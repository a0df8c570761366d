package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// IntakeOriginator is the ORIGINATOR_ID of the leads the app's intake webhook
// creates with their owner. The pipeline gives such a lead's ONCRMLEADADD a moment
// (Config.IntakeWait) for intake to record its decision (RecordCreated) instead of
// routing it a second time.
const IntakeOriginator = "leadrouter-intake"

// Created is a lead that was created with the owner routing chose for it.
type Created struct {
	LeadID int64
	UserID int64
	// Person is the owner's name; RuleID and TeamID what chose them; Trace the
	// one-line reason as written to the lead's timeline.
	Person, RuleID, TeamID, Trace string
	// At is when the lead was created with its owner.
	At time.Time
	// Deadline is the response deadline of the team that chose the owner, zero when
	// it has none. The lead is taken to be in the portal's default status, as intake
	// creates it without a STATUS_ID.
	Deadline time.Duration
}

// RecordCreated records the decision of a lead created with its owner as the
// pipeline records its own once written and noted, with its line in the assignment
// log and its count in the day's statistics: the lead's events are then settled as
// already routed (and updates soon after as echoes). When the owner's team has a
// response deadline, the lead's deadline check is scheduled with the record, for
// c.At plus the deadline, and runs in the pipeline as for the leads it routes. It
// reports false, changing nothing, when the lead had a record already.
func RecordCreated(ctx context.Context, rdb redis.UniversalClient, memberID string,
	c Created) (bool, error) {
	rec := record{UserID: c.UserID, Person: c.Person, RuleID: c.RuleID, TeamID: c.TeamID,
		Trace: c.Trace, At: c.At, Written: true, Noted: true, WrittenAt: c.At}
	due := ""
	if c.Deadline > 0 {
		rec.DueCreated = true
		due = strconv.FormatInt(c.At.Add(c.Deadline).UnixMilli(), 10)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encode record of lead %d: %w", c.LeadID, err)
	}
	entry, err := json.Marshal(LogEntry{Time: c.At, LeadID: c.LeadID, Outcome: OutcomeAssigned,
		UserID: c.UserID, Person: c.Person, RuleID: c.RuleID, TeamID: c.TeamID, Reason: c.Trace})
	if err != nil {
		return false, fmt.Errorf("encode log entry of lead %d: %w", c.LeadID, err)
	}
	keys := []string{keyspace.Routed(memberID), keyspace.AssignmentLog(memberID),
		keyspace.PipelineStats(memberID, c.At.UTC().Format(time.DateOnly)),
		keyspace.Deadlines(memberID)}
	n, err := createdScript.Run(ctx, rdb, keys, itoa(c.LeadID), raw, entry,
		"routed:"+itoa(c.UserID), int64(statsTTL/time.Second), due).Int()
	if err != nil {
		return false, fmt.Errorf("record created lead %d of portal %s: %w", c.LeadID, memberID, err)
	}
	return n == 1, nil
}

// createdScript writes the record of a created lead once, with its log line, its
// count in the day's statistics and its deadline check.
//
// KEYS[1] keyspace.Routed, KEYS[2] keyspace.AssignmentLog, KEYS[3] the day's
// keyspace.PipelineStats, KEYS[4] keyspace.Deadlines. ARGV[1] lead ID, ARGV[2]
// record, ARGV[3] log entry, ARGV[4] stats field, ARGV[5] stats TTL in seconds,
// ARGV[6] when the deadline check is due in Unix ms, empty for none.
//
// Returns 1 when recorded, 0 when the lead had a record already.
var createdScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[4], 'NX', ARGV[6], ARGV[1])
end
return 1
`)

// awaitIntake holds, for a moment, the new leads that intake created and has not
// recorded yet: intake adds a lead with its owner and records the decision right
// after, so the lead's ONCRMLEADADD may overtake the record. Such a lead is looked
// at again after Config.IntakeRecheck, and routed like any other lead once it is
// older than Config.IntakeWait. It returns the units to decide.
func (b *batchRun) awaitIntake(units []*unit,
	leads map[int64]map[string]json.RawMessage) []*unit {
	var decide []*unit
	for _, u := range units {
		lead := leads[u.leadID]
		if u.round > 0 || b.records[u.leadID] != nil ||
			scalar(lead["ORIGINATOR_ID"]) != IntakeOriginator {
			decide = append(decide, u)
			continue
		}
		created, err := time.Parse(time.RFC3339, scalar(lead["DATE_CREATE"]))
		if err != nil || b.now.Sub(created) >= b.q.cfg.IntakeWait {
			decide = append(decide, u)
			continue
		}
		u.res = result{kind: held, reason: reasonAwaitIntake,
			until: b.now.Add(b.q.cfg.IntakeRecheck)}
	}
	return decide
}
