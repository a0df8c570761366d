package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// work is one worker: it leases a due portal, takes one turn on it and hands it
// back, until loopCtx ends. workCtx ends a turn in flight (the instance is killed).
func (q *Queue) work(loopCtx, workCtx context.Context) {
	for loopCtx.Err() == nil {
		memberID, token, next, err := q.lease(loopCtx)
		if err != nil && loopCtx.Err() == nil {
			q.log.Warn("lease portal failed", "error", err)
		}
		if memberID == "" {
			q.idle(loopCtx, next)
			continue
		}
		end := q.turn(workCtx, memberID)
		if workCtx.Err() != nil {
			return // the lease runs out and another worker takes the entries over
		}
		if err := q.release(workCtx, memberID, token, end); err != nil {
			q.log.Warn("release portal failed", "member_id", memberID, "error", err)
		}
	}
}

// entry is one stream entry read by a turn.
type entry struct {
	id   string
	item Item
}

// unit is one lead in a turn: every entry that concerns it, merged.
type unit struct {
	leadID  int64
	entries []entry
	event   string    // the event that decides how the lead is treated
	at      time.Time // earliest arrival
	attempt int       // most earlier failures among the entries
	held    bool      // the lead came from the held set
	recheck bool      // a routed lead read to see whether a person moved it
	round   int       // the re-route round to decide in; 0 for a new lead
	// For a due deadline check (event sourceDeadline, deadline.go), exclude and
	// passTeam pass its lead on, and checkAt is when to look again (zero: the check
	// is done).
	exclude  []int64
	passTeam string
	checkAt  time.Time

	res        result
	log        *LogEntry // the decision to log, when one was made
	wroteOwner bool      // this turn set the lead's owner on the portal
}

// resultKind is what became of a unit in a turn.
type resultKind int

const (
	settled resultKind = iota // routed, skipped or ignored: acknowledge
	held                      // routing held it: decide again later
	retry                     // temporary failure: try again after a backoff
	dead                      // permanent failure: dead-letter with the reason
)

type result struct {
	kind   resultKind
	reason string    // why (skips, holds, failures)
	code   string    // the portal's error code, for dead letters
	until  time.Time // held: when to decide again
	err    error     // retry and dead: the failure, for the log
	// free marks a retry that does not count as an attempt: the portal asked us to
	// slow down, which says nothing about the lead.
	free bool
}

// turn takes one batch of the portal's work, processes it and settles every entry
// it took. It returns when the portal should be looked at again.
func (q *Queue) turn(ctx context.Context, memberID string) turnEnd {
	log := q.log.With("member_id", memberID)
	units, offline, gather, err := q.take(ctx, memberID)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("take work failed", "error", err)
		}
		return turnEnd{notBefore: q.cfg.Now().Add(q.cfg.RetryBase)}
	}
	if !gather.IsZero() {
		return turnEnd{notBefore: gather}
	}
	var end turnEnd
	if len(offline) > 0 {
		if err := q.sweepOffline(ctx, memberID); err != nil {
			log.Warn("read offline events failed", "error", err)
			end.notBefore = q.cfg.Now().Add(q.cfg.RetryBase)
		} else if err := q.ack(ctx, memberID, offline); err != nil {
			log.Warn("acknowledge offline events failed", "error", err)
		}
	}
	if len(units) == 0 {
		return end
	}
	pause := q.process(ctx, memberID, units)
	if ctx.Err() != nil {
		return end // killed mid-batch: entries stay pending
	}
	q.closeChecks(memberID, units)
	if err := q.settle(ctx, memberID, units); err != nil {
		log.Warn("settle batch failed", "error", err)
	} else if err := q.settleChecks(ctx, memberID, units); err != nil {
		log.Warn("settle deadline checks failed", "error", err)
	}
	if pause.After(end.notBefore) {
		end.notBefore = pause
	}
	return end
}

// take gathers up to one batch of the portal's work: entries abandoned by dead
// workers, new entries, held leads whose time has come and due deadline checks,
// merged per lead.
// Entries that concern no lead (ONOFFLINEEVENT) are returned apart. When less than
// a batch waits and its oldest entry is younger than Config.Gather, take reads
// nothing and returns when the batch is worth taking: a burst's events arrive over
// a moment, and each batch taken early costs REST calls.
func (q *Queue) take(ctx context.Context, memberID string) ([]*unit, []entry, time.Time, error) {
	if err := q.ensureGroup(ctx, memberID); err != nil {
		return nil, nil, time.Time{}, err
	}
	stream := keyspace.EventStream(memberID)
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: q.cfg.Consumer,
		MinIdle: q.cfg.Lease, Start: "0-0", Count: int64(q.cfg.BatchSize),
	}).Result()
	if err != nil {
		if isNoGroup(err) {
			q.groupOK.Delete(memberID) // the stream was deleted with the portal's data
		}
		return nil, nil, time.Time{}, fmt.Errorf("take over abandoned entries: %w", err)
	}
	if len(msgs) > 0 {
		mReclaimed.Add(float64(len(msgs)))
	} else if until, err := q.gatherUntil(ctx, memberID); err != nil || !until.IsZero() {
		return nil, nil, until, err
	}
	if room := q.cfg.BatchSize - len(msgs); room > 0 {
		streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: q.cfg.Consumer, Streams: []string{stream, ">"},
			Count: int64(room), Block: -1,
		}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, nil, time.Time{}, fmt.Errorf("read new entries: %w", err)
		}
		for _, s := range streams {
			msgs = append(msgs, s.Messages...)
		}
	}
	units, offline := merge(msgs)
	if room := q.cfg.BatchSize - len(units); room > 0 {
		due, err := q.due(ctx, keyspace.Held(memberID), room)
		if err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("read held leads: %w", err)
		}
		units = addHeld(units, due)
	}
	if room := q.cfg.BatchSize - len(units); room > 0 {
		due, err := q.due(ctx, keyspace.Deadlines(memberID), room)
		if err != nil {
			return nil, nil, time.Time{}, fmt.Errorf("read deadline checks: %w", err)
		}
		units = addChecks(units, due)
	}
	return units, offline, time.Time{}, nil
}

// gatherUntil returns when the entries nobody has read yet are worth a turn: the
// zero time when they fill a batch, when there are none, or when the oldest has
// waited Config.Gather; otherwise the moment it will have.
func (q *Queue) gatherUntil(ctx context.Context, memberID string) (time.Time, error) {
	if q.cfg.Gather <= 0 {
		return time.Time{}, nil
	}
	stream := keyspace.EventStream(memberID)
	pipe := q.rdb.Pipeline()
	xlen := pipe.XLen(ctx, stream)
	pending := pipe.XPending(ctx, stream, group)
	groups := pipe.XInfoGroups(ctx, stream)
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, fmt.Errorf("look at waiting entries: %w", err)
	}
	waiting := xlen.Val() - pending.Val().Count
	if waiting <= 0 || waiting >= int64(q.cfg.BatchSize) {
		return time.Time{}, nil
	}
	last := "0-0"
	for _, g := range groups.Val() {
		if g.Name == group {
			last = g.LastDeliveredID
		}
	}
	first, err := q.rdb.XRangeN(ctx, stream, "("+last, "+", 1).Result()
	if err != nil || len(first) == 0 {
		return time.Time{}, err
	}
	ms, _, _ := strings.Cut(first[0].ID, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	if until := time.UnixMilli(n).Add(q.cfg.Gather); until.After(q.cfg.Now()) {
		return until, nil
	}
	return time.Time{}, nil
}

// merge turns stream messages into one unit per lead. A lead's add event wins over
// its update events: a lead that is new is routed as new however its events came.
func merge(msgs []redis.XMessage) ([]*unit, []entry) {
	var units []*unit
	var offline []entry
	byLead := map[int64]*unit{}
	for _, m := range msgs {
		e := entry{id: m.ID, item: parseItem(m.Values)}
		if e.item.LeadID <= 0 {
			offline = append(offline, e)
			continue
		}
		u := byLead[e.item.LeadID]
		if u == nil {
			u = &unit{leadID: e.item.LeadID, event: e.item.Event, at: e.item.At}
			byLead[e.item.LeadID] = u
			units = append(units, u)
		}
		u.entries = append(u.entries, e)
		if u.event == bitrix.EventLeadUpdate && e.item.Event != bitrix.EventLeadUpdate {
			u.event = e.item.Event
		}
		if e.item.At.Before(u.at) {
			u.at = e.item.At
		}
		u.attempt = max(u.attempt, e.item.Attempt)
	}
	return units, offline
}

// addHeld adds the held leads that have no unit yet.
func addHeld(units []*unit, due []string) []*unit {
	for _, s := range due {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		found := false
		for _, u := range units {
			if u.leadID == id {
				u.held, found = true, true
			}
		}
		if !found {
			units = append(units, &unit{leadID: id, event: bitrix.EventLeadAdd, held: true})
		}
	}
	return units
}

// due returns up to n members of the sorted set key whose score, a Unix time in
// milliseconds, has come: the portal's due held leads or deadline checks.
func (q *Queue) due(ctx context.Context, key string, n int) ([]string, error) {
	return q.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: key, ByScore: true, Start: "-inf",
		Stop: strconv.FormatInt(q.cfg.Now().UnixMilli(), 10), Count: int64(n),
	}).Result()
}

// parseItem reads a stream entry's fields; unreadable numbers count as zero.
func parseItem(v map[string]any) Item {
	str := func(k string) string { s, _ := v[k].(string); return s }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	it := Item{Event: str("event"), LeadID: num("lead"), Attempt: int(num("attempt"))}
	if ms := num("at"); ms > 0 {
		it.At = time.UnixMilli(ms)
	}
	return it
}

// ack acknowledges and deletes entries that need nothing more.
func (q *Queue) ack(ctx context.Context, memberID string, entries []entry) error {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	stream := keyspace.EventStream(memberID)
	pipe := q.rdb.TxPipeline()
	pipe.XAck(ctx, stream, group, ids...)
	pipe.XDel(ctx, stream, ids...)
	_, err := pipe.Exec(ctx)
	return err
}

// idle waits until the next portal is due, an Enqueue on this instance, or at most
// Config.Poll (work enqueued by other instances is found by looking again).
func (q *Queue) idle(ctx context.Context, next time.Time) {
	wait := q.cfg.Poll
	if !next.IsZero() {
		wait = min(wait, max(time.Until(next), time.Millisecond))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-q.wake:
	case <-t.C:
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
