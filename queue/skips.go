package queue

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/leadrouter/leadrouter/routing"
)

// Skip is one person a decision passed over, and why: one of routing's Skip…
// reasons (absent, clocked_out, daily_cap, ...). Decisions keep them in their log
// entries, so the settings page counts skips from the log without counters of its
// own.
type Skip struct {
	UserID int64  `json:"u"`
	Reason string `json:"r"`
}

// skipsOf lists the people a decision's trace says were skipped.
func skipsOf(t routing.Trace) []Skip {
	var out []Skip
	for _, e := range t.Entries {
		if e.Code != routing.CodeSkipped {
			continue
		}
		id, err := strconv.ParseInt(e.Params["user_id"], 10, 64)
		if err != nil || e.Params["reason"] == "" {
			continue
		}
		out = append(out, Skip{UserID: id, Reason: e.Params["reason"]})
	}
	return out
}

// PersonSkips counts how often decisions passed one person over for one reason.
type PersonSkips struct {
	UserID int64
	Reason string
	// Today counts the current UTC day, Week the last seven days including today.
	Today, Week int
}

// PeopleSkips counts, from the portal's assignment log, how often decisions
// skipped each person and why, today and over the week, busiest first. The log is
// capped (Config.LogCap), so on a busy portal the week counts only the decisions
// it still holds; complete reports whether it reached back a full week.
func (q *Queue) PeopleSkips(ctx context.Context, memberID string) (out []PersonSkips,
	complete bool, err error) {
	entries, err := q.logEntries(ctx, memberID)
	if err != nil {
		return nil, false, err
	}
	now := q.cfg.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	weekStart := today.AddDate(0, 0, -6)
	index := map[Skip]int{}
	complete = len(entries) < q.cfg.LogCap
	for _, e := range entries { // newest first
		if e.Time.Before(weekStart) {
			complete = true
			break
		}
		for _, sk := range e.Skipped {
			i, ok := index[sk]
			if !ok {
				i = len(out)
				index[sk] = i
				out = append(out, PersonSkips{UserID: sk.UserID, Reason: sk.Reason})
			}
			out[i].Week++
			if !e.Time.Before(today) {
				out[i].Today++
			}
		}
	}
	slices.SortFunc(out, func(a, b PersonSkips) int {
		return cmp.Or(b.Week-a.Week, cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.UserID, b.UserID))
	})
	return out, complete, nil
}
