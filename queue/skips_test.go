package queue_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

func TestPeopleSkips(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	entry := func(ago time.Duration, skipped ...queue.Skip) queue.LogEntry {
		return queue.LogEntry{Time: now.Add(-ago), LeadID: 1, Outcome: queue.OutcomeAssigned,
			UserID: 9, Skipped: skipped}
	}
	absent2 := queue.Skip{UserID: 2, Reason: "absent"}
	capped3 := queue.Skip{UserID: 3, Reason: "daily_cap"}
	tests := []struct {
		name     string
		logCap   int
		entries  []queue.LogEntry // newest first
		want     []queue.PersonSkips
		complete bool
	}{
		{name: "empty log", logCap: 10, complete: true},
		{name: "today and earlier this week", logCap: 10, entries: []queue.LogEntry{
			entry(time.Hour, absent2, capped3),
			entry(2*time.Hour, absent2),
			entry(16*time.Hour, absent2),   // yesterday
			entry(8*24*time.Hour, capped3), // before the week
		}, want: []queue.PersonSkips{
			{UserID: 2, Reason: "absent", Today: 2, Week: 3},
			{UserID: 3, Reason: "daily_cap", Today: 1, Week: 1},
		}, complete: true},
		{name: "full log that ends inside the week", logCap: 2, entries: []queue.LogEntry{
			entry(time.Hour, capped3),
			entry(3*24*time.Hour, capped3),
		}, want: []queue.PersonSkips{{UserID: 3, Reason: "daily_cap", Today: 1, Week: 2}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			memberID := "portal" + string(rune('a'+i))
			for _, e := range tt.entries {
				raw, _ := json.Marshal(e)
				rdb.RPush(context.Background(), keyspace.AssignmentLog(memberID), raw)
			}
			q := queue.New(rdb, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)),
				queue.Config{LogCap: tt.logCap, Now: func() time.Time { return now }})
			got, complete, err := q.PeopleSkips(context.Background(), memberID)
			if err != nil {
				t.Fatalf("PeopleSkips() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || complete != tt.complete {
				t.Errorf("PeopleSkips() complete %v (want %v), counts (-want +got):\n%s",
					complete, tt.complete, diff)
			}
		})
	}
}
