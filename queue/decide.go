package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

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
		rl[u.leadID] = toLead(u.leadID, leads[u.leadID])
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
		Reason: trace, Skip: mainReason(d.Trace)}
	switch d.Outcome {
	case routing.Assigned:
		rec := &record{UserID: d.UserID, Person: dir.People[d.UserID].Name, RuleID: d.RuleID,
			TeamID: d.TeamID, Trace: trace, At: b.now}
		rec, err := b.claim(ctx, u.leadID, rec)
		if err != nil {
			u.res = b.classify(err)
			return false
		}
		b.records[u.leadID] = rec
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

// claim stores rec as the lead's decision unless one is recorded already, and
// returns the decision that stands.
func (b *batchRun) claim(ctx context.Context, leadID int64, rec *record) (*record, error) {
	key := keyspace.Routed(b.memberID)
	raw, _ := json.Marshal(rec)
	ok, err := b.q.rdb.HSetNX(ctx, key, itoa(leadID), raw).Result()
	if err != nil {
		return nil, fmt.Errorf("record decision: %w", err)
	}
	if ok {
		return rec, nil
	}
	s, err := b.q.rdb.HGet(ctx, key, itoa(leadID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read decision: %w", err)
	}
	var prior record
	if err := json.Unmarshal([]byte(s), &prior); err != nil {
		return nil, fmt.Errorf("read decision: %w", err)
	}
	return &prior, nil
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
