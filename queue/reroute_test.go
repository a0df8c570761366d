package queue_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// TestRerouteOnMoveBack routes a lead, has a person move it to JUNK and back to NEW,
// and checks that it gets a new owner exactly once when the settings re-route NEW,
// also when the update is delivered again, and never without the option.
func TestRerouteOnMoveBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []string
		want     int // assignments in the lead's history
	}{
		{name: "reroute NEW", statuses: []string{"NEW"}, want: 2},
		{name: "no option", want: 1},
		{name: "other status", statuses: []string{"IN_PROCESS"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
			p := e.install(t, "reroute", 3)
			ctx := context.Background()
			s, _, err := e.engine.Settings(ctx, p.MemberID())
			if err != nil {
				t.Fatalf("Settings() error = %v", err)
			}
			s.Reroute = routing.Reroute{Statuses: tt.statuses}
			if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
				t.Fatalf("SaveSettings() error = %v", err)
			}
			q, _ := e.startQueue(t, testConfig("reroute"))
			settle := e.settler(t, p)
			var id int
			settle("lead routed and its echo", 2, func() {
				id = p.AddLead(1, map[string]any{"TITLE": "Comes back"})
			})
			first := owner(p, id)
			settle("move to JUNK", 1, func() {
				p.UpdateLead(1, id, map[string]any{"STATUS_ID": "JUNK"})
			})
			back := 1 // the move, and the echo of a second write when re-routed
			if tt.want == 2 {
				back = 2
			}
			before := len(p.Deliveries())
			settle("move back to NEW", back, func() {
				p.UpdateLead(1, id, map[string]any{"STATUS_ID": "NEW"})
			})
			// The portal delivers the move back a second time (the echo of the app's
			// write can only follow it).
			move := p.Deliveries()[before]
			if move.Event != "ONCRMLEADUPDATE" {
				t.Fatalf("delivery after the move = %s, want ONCRMLEADUPDATE", move.Event)
			}
			settle("duplicate of the move", 0, func() { redeliver(t, move) })

			hist, err := q.LeadHistory(ctx, p.MemberID(), int64(id))
			if err != nil {
				t.Fatalf("LeadHistory() error = %v", err)
			}
			var owners []int64
			for _, h := range hist {
				if h.Outcome == queue.OutcomeAssigned {
					owners = append(owners, h.UserID)
				}
			}
			if len(owners) != tt.want {
				t.Fatalf("assignments = %v, want %d", owners, tt.want)
			}
			now := owner(p, id)
			switch {
			case tt.want == 1 && now != first:
				t.Errorf("owner = %s, want %s (not routed again)", now, first)
			case tt.want == 2 && now == first:
				t.Errorf("owner = %s after the move back, want the next rep", now)
			case tt.want == 2 && now != fmt.Sprint(owners[0]) && now != fmt.Sprint(owners[1]):
				t.Errorf("owner = %s, want the logged %d", now, owners[1])
			}
		})
	}
}

// redeliver POSTs a delivery to its handler again, as a portal that sends an event
// twice does.
func redeliver(t *testing.T, d bitrixtest.Delivery) {
	t.Helper()
	resp, err := http.Post(d.Handler, "application/x-www-form-urlencoded",
		strings.NewReader(d.Body))
	if err != nil {
		t.Fatalf("redeliver %s: %v", d.Event, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("redeliver %s: status %d", d.Event, resp.StatusCode)
	}
}

// owner returns the lead's responsible as the portal stores it.
func owner(p *bitrixtest.Portal, id int) string {
	l, _ := p.Lead(id)
	return fmt.Sprint(l["ASSIGNED_BY_ID"])
}
