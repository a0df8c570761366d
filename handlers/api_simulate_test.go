package handlers_test

import (
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
