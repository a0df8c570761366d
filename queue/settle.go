package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Outcomes in the assignment log.
const (
	OutcomeAssigned  = "assigned"
	OutcomeHeld      = "held"
	OutcomeNotRouted = "not_routed"
)

// LogEntry is one line of a portal's assignment log.
type LogEntry struct {
	Time    time.Time `json:"time"`
	LeadID  int64     `json:"lead_id"`
	Outcome string    `json:"outcome"`
	UserID  int64     `json:"user_id,omitempty"`
	Person  string    `json:"person,omitempty"`
	RuleID  string    `json:"rule_id,omitempty"`
	TeamID  string    `json:"team_id,omitempty"`
	// Reason is the decision's one-line trace, in the portal's language.
	Reason string `json:"reason"`
	// Skip is the settings' reason code for a lead not routed or held
	// (routing.NotInSources, ...).
	Skip string `json:"skip,omitempty"`
	// Skipped are the people the decision passed over, and why.
	Skipped []Skip `json:"sk,omitempty"`
}

// skipReason is the settings' reason for leaving a lead alone, from its trace.
func (e *LogEntry) skipReason() string {
	if e == nil || e.Skip == "" {
		return reasonNotRouted
	}
	return e.Skip
}

// DeadLetter is work the pipeline could not deliver, kept for the administrator.
type DeadLetter struct {
	// ID identifies the entry for Retry.
	ID       string    `json:"id"`
	LeadID   int64     `json:"lead_id"`
	Event    string    `json:"event"`
	Reason   string    `json:"reason"`
	Code     string    `json:"code,omitempty"`
	Time     time.Time `json:"time"`
	Attempts int       `json:"attempts"`
}

// statsTTL keeps a day's counters long enough for "this week".
const statsTTL = 9 * 24 * time.Hour

// settle writes what became of every unit of a turn in one transaction on the
// portal's slot: the log, counters, held and dead-letter entries, retries, and the
// acknowledgement and deletion of the entries taken.
func (q *Queue) settle(ctx context.Context, memberID string, units []*unit) error {
	now := q.cfg.Now()
	stream := keyspace.EventStream(memberID)
	stats := keyspace.PipelineStats(memberID, now.UTC().Format(time.DateOnly))
	pipe := q.rdb.TxPipeline()
	var ids []string
	var logs []any
	counts := map[string]int64{}
	for _, u := range units {
		for _, e := range u.entries {
			ids = append(ids, e.id)
		}
		if u.log != nil {
			b, _ := json.Marshal(u.log)
			logs = append(logs, b)
		}
		q.settleUnit(ctx, pipe, memberID, counts, u, now)
	}
	if len(logs) > 0 {
		pipe.LPush(ctx, keyspace.AssignmentLog(memberID), logs...)
	}
	for field, n := range counts {
		pipe.HIncrBy(ctx, stats, field, n)
	}
	if len(ids) > 0 {
		pipe.XAck(ctx, stream, group, ids...)
		pipe.XDel(ctx, stream, ids...)
	}
	pipe.Expire(ctx, stats, statsTTL)
	pipe.LTrim(ctx, keyspace.AssignmentLog(memberID), 0, int64(q.cfg.LogCap-1))
	pipe.LTrim(ctx, keyspace.DeadLetters(memberID), 0, int64(q.cfg.DeadCap-1))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("settle batch of portal %s: %w", memberID, err)
	}
	return nil
}

// settleUnit queues the commands that record one unit's result, and adds to
// counts the day's counters it moves.
func (q *Queue) settleUnit(ctx context.Context, pipe redis.Pipeliner, memberID string,
	counts map[string]int64, u *unit, now time.Time) {
	heldKey := keyspace.Held(memberID)
	lead := itoa(u.leadID)
	if u.log != nil && u.log.Outcome == OutcomeAssigned {
		counts["routed:"+itoa(u.log.UserID)]++
		mRouted.Inc()
		q.observeAge(u, now)
	}
	switch u.res.kind {
	case held:
		pipe.ZAdd(ctx, heldKey, redis.Z{Score: float64(u.res.until.UnixMilli()), Member: lead})
		// Counted as its log line is written: once, when routing held it. A lead
		// waiting for intake's record or for a method's reset has no such line.
		if u.log != nil && u.log.Outcome == OutcomeHeld {
			counts["held"]++
			mHeld.Inc()
		}
		return
	case retry:
		attempt := u.attempt + 1
		if u.res.free {
			attempt = u.attempt
		}
		if attempt < q.cfg.MaxAttempts {
			q.unhold(ctx, pipe, heldKey, u)
			it := Item{Event: u.event, LeadID: u.leadID, At: u.at, Attempt: attempt}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: keyspace.EventStream(memberID), Values: it.values(now)})
			mRetried.Inc()
			return
		}
		u.res = result{kind: dead, code: u.res.code, err: u.res.err,
			reason: fmt.Sprintf("gave up after %d attempts: %s", u.attempt+1, u.res.reason)}
		fallthrough
	case dead:
		q.unhold(ctx, pipe, heldKey, u)
		d := DeadLetter{ID: randomID(), LeadID: u.leadID, Event: u.event, Reason: u.res.reason,
			Code: u.res.code, Time: now, Attempts: u.attempt + 1}
		b, _ := json.Marshal(d)
		pipe.LPush(ctx, keyspace.DeadLetters(memberID), b)
		counts["dead"]++
		mDead.WithLabelValues(deadLabel(u.res.code)).Inc()
		q.log.Warn("lead dead-lettered", "member_id", memberID, "lead_id", u.leadID,
			"reason", u.res.reason, "error", u.res.err)
	case settled:
		q.unhold(ctx, pipe, heldKey, u)
		if u.res.reason != "" {
			mSkipped.WithLabelValues(u.res.reason).Inc()
		}
		if u.res.reason == reasonNotRouted {
			// The settings page shows why leads were left alone; echoes and repeats
			// of routed leads are the pipeline's business and only metrics count them.
			counts["skip:"+u.log.skipReason()]++
		}
	}
}

// unhold takes a lead that came from the held set out of it.
func (q *Queue) unhold(ctx context.Context, pipe redis.Pipeliner, heldKey string, u *unit) {
	if u.held {
		pipe.ZRem(ctx, heldKey, itoa(u.leadID))
	}
}

func (q *Queue) observeAge(u *unit, now time.Time) {
	if !u.at.IsZero() {
		mLeadAge.Observe(now.Sub(u.at).Seconds())
	}
}

func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deadLabel keeps the metric's label set small.
func deadLabel(code string) string {
	if code == "" {
		return "other"
	}
	return code
}
