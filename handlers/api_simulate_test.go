package handlers_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/routing"
)

// TestTrialKnowsAvailability runs a trial of a team that requires clock-in: it must
// see who started the working day and who is absent, as the pipeline does.
func TestTrialKnowsAvailability(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	closed := clara
	closed.Timeman = "CLOSED"
	p.UpdateUser(closed)
	away := dmitri
	away.AbsentUntil = time.Now().Add(48 * time.Hour)
	p.UpdateUser(away)
	s.install(p)
	token := s.session(p, anna.ID)

	draft := salesTeam()
	draft.Teams[0].RequireClockIn = true
	draft.Teams[0].Members = append(draft.Teams[0].Members,
		routing.Member{UserID: int64(dmitri.ID), Weight: 1})
	var report struct {
		Leads []struct{ Outcome, Person, Reason string } `json:"leads"`
	}
	body := map[string]any{"settings": draft, "leads": []map[string]string{
		{"TITLE": "Typed in", "SOURCE_ID": "WEB"}, {"TITLE": "Second", "SOURCE_ID": "WEB"}}}
	if code := s.call(token, "POST", "/api/simulate", body, &report); code != 200 {
		t.Fatalf("POST /api/simulate = %d", code)
	}
	if len(report.Leads) != 2 {
		t.Fatalf("trial decided %d leads, want 2", len(report.Leads))
	}
	for i, l := range report.Leads {
		if l.Person != "Boris Petrov" {
			t.Errorf("lead %d went to %q (%s), want Boris Petrov, the only one at work",
				i, l.Person, l.Reason)
		}
		for _, want := range []string{"Clara Schmidt — has not started the working day",
			"Dmitri Ivanov — absent until"} {
			if !strings.Contains(l.Reason, want) {
				t.Errorf("lead %d reason = %q, want it to say %q", i, l.Reason, want)
			}
		}
	}
}

// TestTrialOfLatestLeads tries the portal's latest leads: up to 500 of them, newest
// first, each once, read in one REST request however many.
func TestTrialOfLatestLeads(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	const created = 130
	var ids []int64
	for i := range created {
		ids = append(ids, int64(p.AddLead(anna.ID, map[string]any{"TITLE": "Lead " +
			strconv.Itoa(i), "ASSIGNED_BY_ID": anna.ID})))
	}
	s.install(p)
	token := s.session(p, anna.ID)
	// The first trial also reads what later ones find cached; the second, of one
	// lead, sets what a trial costs.
	baseline := int64(-1)
	for i, tc := range []struct{ recent, want int }{{1, 1}, {1, 1}, {500, created}, {60, 60},
		{5000, created}} {
		var report struct {
			Leads []struct {
				LeadID int64 `json:"lead_id"`
			} `json:"leads"`
		}
		before := p.RequestCount()
		body := map[string]any{"settings": salesTeam(), "recent": tc.recent}
		if code := s.call(token, "POST", "/api/simulate", body, &report); code != 200 {
			t.Fatalf("POST /api/simulate recent %d = %d", tc.recent, code)
		}
		if len(report.Leads) != tc.want {
			t.Fatalf("trial of the latest %d leads took %d, want %d", tc.recent,
				len(report.Leads), tc.want)
		}
		for i, l := range report.Leads {
			if want := ids[created-1-i]; l.LeadID != want {
				t.Fatalf("trial lead %d = %d, want %d (newest first, each once)", i, l.LeadID,
					want)
			}
		}
		// Whatever else the trial reads, its leads take one request however many.
		n := p.RequestCount() - before
		if i == 1 {
			baseline = n
		}
		if i > 0 && n != baseline {
			t.Errorf("trial of %d leads cost %d REST requests, want %d as for one lead",
				tc.recent, n, baseline)
		}
	}
}
