package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// ErrNoDeadLetter is returned by Retry for an ID the dead-letter list does not hold.
var ErrNoDeadLetter = errors.New("no such dead letter")

// Log returns the newest entries of the portal's assignment log whose lead ID,
// person, rule, team, outcome or reason contains query (case-insensitive; "" matches
// all), at most limit of them (limit ≤ 0 means 100).
func (q *Queue) Log(ctx context.Context, memberID, query string, limit int) ([]LogEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	all, err := q.logEntries(ctx, memberID)
	if err != nil {
		return nil, err
	}
	query = strings.ToLower(strings.TrimSpace(query))
	out := []LogEntry{}
	for _, e := range all {
		if len(out) == limit {
			break
		}
		if query == "" || strings.Contains(e.haystack(), query) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (e LogEntry) haystack() string {
	return strings.ToLower(strings.Join([]string{strconv.FormatInt(e.LeadID, 10), e.Person,
		e.RuleID, e.TeamID, e.Outcome, e.Reason}, "\x00"))
}

// LeadHistory returns every log entry of one lead, newest first.
func (q *Queue) LeadHistory(ctx context.Context, memberID string,
	leadID int64) ([]LogEntry, error) {
	all, err := q.logEntries(ctx, memberID)
	if err != nil {
		return nil, err
	}
	out := []LogEntry{}
	for _, e := range all {
		if e.LeadID == leadID {
			out = append(out, e)
		}
	}
	return out, nil
}

// LeadMoves returns the later changes of owner of one routed lead that the
// pipeline saw, oldest first; none for a lead it never routed.
func (q *Queue) LeadMoves(ctx context.Context, memberID string, leadID int64) ([]Move, error) {
	raw, err := q.rdb.HGet(ctx, keyspace.Routed(memberID), itoa(leadID)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read record of lead %d of portal %s: %w", leadID, memberID, err)
	}
	var rec record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("read record of lead %d of portal %s: %w", leadID, memberID, err)
	}
	return rec.Moves, nil
}

func (q *Queue) logEntries(ctx context.Context, memberID string) ([]LogEntry, error) {
	raw, err := q.rdb.LRange(ctx, keyspace.AssignmentLog(memberID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read assignment log of portal %s: %w", memberID, err)
	}
	out := make([]LogEntry, 0, len(raw))
	for _, s := range raw {
		var e LogEntry
		if json.Unmarshal([]byte(s), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// DeadLetters returns the portal's dead letters, newest first.
func (q *Queue) DeadLetters(ctx context.Context, memberID string) ([]DeadLetter, error) {
	raw, err := q.rdb.LRange(ctx, keyspace.DeadLetters(memberID), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read dead letters of portal %s: %w", memberID, err)
	}
	out := make([]DeadLetter, 0, len(raw))
	for _, s := range raw {
		var d DeadLetter
		if json.Unmarshal([]byte(s), &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Retry takes the dead letter id off the list and queues its lead again, as the
// administrator asks from the settings page. An empty id retries every dead letter.
// It returns how many leads were queued.
func (q *Queue) Retry(ctx context.Context, memberID, id string) (int, error) {
	key := keyspace.DeadLetters(memberID)
	raw, err := q.rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("read dead letters of portal %s: %w", memberID, err)
	}
	n := 0
	for _, s := range raw {
		var d DeadLetter
		if json.Unmarshal([]byte(s), &d) != nil || (id != "" && d.ID != id) {
			continue
		}
		removed, err := q.rdb.LRem(ctx, key, 1, s).Result()
		if err != nil {
			return n, fmt.Errorf("remove dead letter %s: %w", d.ID, err)
		}
		if removed == 0 {
			continue // another request retried it meanwhile
		}
		if err := q.Enqueue(ctx, memberID, Item{Event: SourceRetry, LeadID: d.LeadID}); err != nil {
			q.rdb.LPush(context.WithoutCancel(ctx), key, s)
			return n, err
		}
		n++
	}
	if id != "" && n == 0 {
		return 0, ErrNoDeadLetter
	}
	return n, nil
}

// Stats is the pipeline's picture of one portal for the settings page.
type Stats struct {
	// RoutedToday and RoutedWeek count leads per person (user ID), today (UTC) and
	// over the last seven days including today.
	RoutedToday map[int64]int `json:"routed_today"`
	RoutedWeek  map[int64]int `json:"routed_week"`
	// ShareWeek is each person's share of the week's routed leads (0–1), to hold
	// against WeightShare.
	ShareWeek map[int64]float64 `json:"share_week"`
	// WeightShare is each team member's share by the current settings' weights
	// (a person in several teams counts with their largest weight), empty when the
	// queue has no decider.
	WeightShare map[int64]float64 `json:"weight_share"`
	// SkipsWeek counts the week's events settled without routing, by reason.
	SkipsWeek map[string]int `json:"skips_week"`
	HeldWeek  int            `json:"held_week"`
	// HeldNow is how many leads wait for somebody to become available.
	HeldNow int `json:"held_now"`
	// QueueDepth is how many events wait or are in progress; QueueAge how long the
	// oldest of them has waited.
	QueueDepth int           `json:"queue_depth"`
	QueueAge   time.Duration `json:"queue_age"`
	// DeadLetters is the length of the dead-letter list.
	DeadLetters int `json:"dead_letters"`
}

// Stats returns the portal's pipeline statistics.
func (q *Queue) Stats(ctx context.Context, memberID string) (Stats, error) {
	now := q.cfg.Now().UTC()
	pipe := q.rdb.Pipeline()
	days := make([]*redis.MapStringStringCmd, 7)
	for i := range days {
		day := now.AddDate(0, 0, -i).Format(time.DateOnly)
		days[i] = pipe.HGetAll(ctx, keyspace.PipelineStats(memberID, day))
	}
	depth := pipe.XLen(ctx, keyspace.EventStream(memberID))
	oldest := pipe.XRangeN(ctx, keyspace.EventStream(memberID), "-", "+", 1)
	heldNow := pipe.ZCard(ctx, keyspace.Held(memberID))
	dead := pipe.LLen(ctx, keyspace.DeadLetters(memberID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("read stats of portal %s: %w", memberID, err)
	}
	s := Stats{RoutedToday: map[int64]int{}, RoutedWeek: map[int64]int{},
		ShareWeek: map[int64]float64{}, SkipsWeek: map[string]int{},
		QueueDepth: int(depth.Val()), HeldNow: int(heldNow.Val()), DeadLetters: int(dead.Val())}
	for i, d := range days {
		s.addDay(d.Val(), i == 0)
	}
	total := 0
	for _, n := range s.RoutedWeek {
		total += n
	}
	for u, n := range s.RoutedWeek {
		s.ShareWeek[u] = float64(n) / float64(total)
	}
	if err := q.weightShares(ctx, memberID, &s); err != nil {
		return Stats{}, err
	}
	if msgs := oldest.Val(); len(msgs) > 0 {
		if at := parseItem(msgs[0].Values).At; !at.IsZero() {
			s.QueueAge = now.Sub(at)
		}
	}
	return s, nil
}

// weightShares fills s.WeightShare from the portal's current settings.
func (q *Queue) weightShares(ctx context.Context, memberID string, s *Stats) error {
	s.WeightShare = map[int64]float64{}
	if q.decider == nil {
		return nil
	}
	settings, _, err := q.decider.Settings(ctx, memberID)
	if err != nil {
		return fmt.Errorf("read settings of portal %s: %w", memberID, err)
	}
	weights := map[int64]int{}
	for _, t := range settings.Teams {
		for _, m := range t.Members {
			weights[m.UserID] = max(weights[m.UserID], m.Weight, 1)
		}
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	for u, w := range weights {
		s.WeightShare[u] = float64(w) / float64(total)
	}
	return nil
}

// addDay adds one day's counters.
func (s *Stats) addDay(fields map[string]string, today bool) {
	for k, v := range fields {
		n, _ := strconv.Atoi(v)
		name, arg, _ := strings.Cut(k, ":")
		switch name {
		case "routed":
			u, _ := strconv.ParseInt(arg, 10, 64)
			s.RoutedWeek[u] += n
			if today {
				s.RoutedToday[u] += n
			}
		case "skip":
			s.SkipsWeek[arg] += n
		case "held":
			s.HeldWeek += n
		}
	}
}
