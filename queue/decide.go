package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/routing"
)

// decide asks routing about every read lead and records each assignment before it
// is written back. It returns the units whose owner must be written.
func (b *batchRun) decide(ctx context.Context, units []*unit,
	leads map[int64]map[string]json.RawMessage) []*unit {
	var ready []*unit
	for _, u := range units {
		if leads[u.leadID] != nil {
			ready = append(ready, u)
		}
	}
	ready = b.recheck(ctx, ready, leads)
	ready = b.passOn(ready, leads)
	ready = b.awaitIntake(ready, leads)
	if len(ready) == 0 {
		return nil
	}
	dir, err := b.directory(ctx)
	if err != nil {
		b.failAll(ready, err)
		return nil
	}
	rl := make(map[int64]routing.Lead, len(ready))
	for _, u := range ready {
		l := toLead(u.leadID, leads[u.leadID])
		l.Round, l.Exclude, l.PassTeam = u.round, u.exclude, u.passTeam
		rl[u.leadID] = l
	}
	if err := b.existingOwners(ctx, rl); err != nil {
		b.failAll(ready, err)
		return nil
	}
	var write []*unit
	for _, u := range ready {
		if b.decideOne(ctx, u, rl[u.leadID], dir) {
			write = append(write, u)
		}
	}
	if err := b.claim(ctx, write); err != nil {
		b.failAll(write, err)
		return nil
	}
	return write
}

// decideOne decides one lead and reports whether its owner must be written.
func (b *batchRun) decideOne(ctx context.Context, u *unit, lead routing.Lead,
	dir routing.Directory) bool {
	d, err := b.q.decider.Decide(ctx, b.memberID, lead, dir, b.now)
	if err != nil {
		u.res = b.classify(fmt.Errorf("decide: %w", err))
		return false
	}
	trace := d.Trace.Text(dir.Lang)
	entry := &LogEntry{Time: b.now, LeadID: u.leadID, RuleID: d.RuleID, TeamID: d.TeamID,
		Reason: trace, Skip: mainReason(d.Trace), Skipped: skipsOf(d.Trace)}
	switch d.Outcome {
	case routing.Assigned:
		var moves []Move
		if prev := b.records[u.leadID]; prev != nil {
			moves = prev.Moves // a re-route keeps the lead's moves
		}
		b.records[u.leadID] = &record{UserID: d.UserID, Person: dir.People[d.UserID].Name,
			RuleID: d.RuleID, TeamID: d.TeamID, Trace: trace, At: b.now, Round: u.round,
			Moved: lead.Fields["MOVED_TIME"], Status: lead.Fields["STATUS_ID"],
			Skipped: entry.Skipped, Moves: moves, Missed: u.exclude}
		if b.settings.TeamDeadline(d.TeamID) != nil {
			b.records[u.leadID].DueStatus = lead.Fields["STATUS_ID"]
		}
		u.res = result{kind: settled}
		return true
	case routing.Held:
		u.res = result{kind: held, reason: trace, until: b.now.Add(b.q.cfg.HoldRetry)}
		if !u.held {
			entry.Outcome = OutcomeHeld
			u.log = entry
		}
	default:
		u.res = result{kind: settled, reason: reasonNotRouted}
		entry.Outcome = OutcomeNotRouted
		u.log = entry
	}
	return false
}

// claimScript records decisions unless the leads have one already of the same
// re-route round or a later one.
//
// KEYS[1] the portal's lead records (keyspace.Routed)
// ARGV    lead ID, record JSON, round, lead ID, record JSON, round, ...
//
// Returns, per lead in order, the record that stands: the one given when it was
// stored, the earlier one otherwise.
var claimScript = redis.NewScript(`
local out = {}
for i = 1, #ARGV, 3 do
  local round = tonumber(ARGV[i + 2])
  if round == 0 then
    if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
      out[#out + 1] = ARGV[i + 1]
    else
      out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i])
    end
  else
    local cur = redis.call('HGET', KEYS[1], ARGV[i])
    if cur and (cjson.decode(cur).g or 0) >= round then
      out[#out + 1] = cur
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      out[#out + 1] = ARGV[i + 1]
    end
  end
end
return out
`)

// claim stores the decisions of units as their leads' records, in one script call,
// unless a lead has one already (another worker decided it first): then that
// earlier decision stands and is the one written.
func (b *batchRun) claim(ctx context.Context, units []*unit) error {
	if len(units) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(units))
	for _, u := range units {
		raw, _ := json.Marshal(b.records[u.leadID])
		args = append(args, itoa(u.leadID), raw, u.round)
	}
	out, err := claimScript.Run(ctx, b.q.rdb, []string{keyspace.Routed(b.memberID)}, args...).
		StringSlice()
	if err != nil || len(out) != len(units) {
		return fmt.Errorf("record decisions: %w", err)
	}
	for i, u := range units {
		var rec record
		if err := json.Unmarshal([]byte(out[i]), &rec); err != nil {
			return fmt.Errorf("read decision of lead %d: %w", u.leadID, err)
		}
		b.records[u.leadID] = &rec
	}
	return nil
}

// toLead turns crm.lead.get's legacy answer into routing's view of a lead.
func toLead(id int64, raw map[string]json.RawMessage) routing.Lead {
	l := routing.Lead{ID: id, Fields: make(map[string]string, len(raw))}
	for k, v := range raw {
		switch k {
		case "PHONE", "EMAIL", "WEB", "IM", "LINK":
			values := multiField(v)
			l.Fields[k] = strings.Join(values, ", ")
			if k == "PHONE" {
				l.Phones = values
			} else if k == "EMAIL" {
				l.Emails = values
			}
		default:
			l.Fields[k] = scalar(v)
		}
	}
	l.AssignedByID, _ = strconv.ParseInt(l.Fields["ASSIGNED_BY_ID"], 10, 64)
	l.CreatedByID, _ = strconv.ParseInt(l.Fields["CREATED_BY_ID"], 10, 64)
	return l
}

// multiField reads [{"VALUE": "..."}, ...]; anything else reads as no values.
func multiField(raw json.RawMessage) []string {
	var items []struct {
		Value bitrix.Text `json:"VALUE"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it.Value != "" {
			out = append(out, string(it.Value))
		}
	}
	return out
}

// scalar reads a legacy field: strings as they are, numbers and booleans as their
// JSON text, null and structures as "".
func scalar(raw json.RawMessage) string {
	var t bitrix.Text
	if json.Unmarshal(raw, &t) == nil {
		return string(t)
	}
	return ""
}

// mainReason returns the reason code of a decision's first trace entry.
func mainReason(t routing.Trace) string {
	if len(t.Entries) == 0 {
		return ""
	}
	return t.Entries[0].Params["reason"]
}
