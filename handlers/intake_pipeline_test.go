package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/intake"
)

// TestIntakeLeadNotRoutedAgain checks that the ONCRMLEADADD of a lead the intake
// created reaches the pipeline, which settles it as already routed: the owner
// stays, and the team's turn is not spent a second time.
func TestIntakeLeadNotRoutedAgain(t *testing.T) {
	t.Parallel()
	s := buildIntakeStack(t, 5*time.Second, true)
	target, secret := s.source(t, intake.Options{})
	auth := map[string]string{handlers.IntakeSecretHeader: secret}
	ctx := context.Background()
	member := s.portal.MemberID()

	first := intakePost(t, target, "application/json", []byte(`{"name":"Anna"}`), auth)
	if first.Status != http.StatusCreated {
		t.Fatalf("intake post: %d %v, want 201", first.Status, first.Body)
	}
	s.waitEventDone(t, first.leadID())

	// A lead somebody creates in the portal is routed by the pipeline: the next turn.
	manual := s.portal.AddLead(1, map[string]any{"TITLE": "Phone call", "NAME": "Boris"})
	deadline := time.Now().Add(10 * time.Second)
	for leadOwner(s, manual) != "3" {
		if time.Now().After(deadline) {
			t.Fatalf("the portal's own lead has owner %s, want the pipeline's 3", leadOwner(s, manual))
		}
		time.Sleep(20 * time.Millisecond)
	}
	second := intakePost(t, target, "application/json", []byte(`{"name":"Clara"}`), auth)
	s.waitEventDone(t, second.leadID())

	if got := leadOwner(s, first.leadID()); got != "2" {
		t.Errorf("first intake lead owner %s after its echo, want 2", got)
	}
	if got := leadOwner(s, second.leadID()); got != "2" {
		t.Errorf("second intake lead owner %s, want 2 (turns: intake 2, pipeline 3, intake 2)", got)
	}
	stats, err := s.queue.Stats(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if stats.RoutedToday[2] != 2 || stats.RoutedToday[3] != 1 {
		t.Errorf("routed today = %v, want user 2 twice and user 3 once", stats.RoutedToday)
	}
	log, err := s.queue.Log(ctx, member, "", 10)
	if err != nil || len(log) != 3 {
		t.Errorf("assignment log = %v, %v; want 3 entries (two intake leads, one portal lead)",
			log, err)
	}
}

// waitEventDone waits until the portal delivered the lead's ONCRMLEADADD to the app
// and the pipeline has worked through its stream.
func (s *intakeStack) waitEventDone(t *testing.T, leadID int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		delivered := false
		for _, d := range s.portal.Deliveries() {
			if d.Event == "ONCRMLEADADD" && d.Status == http.StatusOK &&
				d.Form.Get("data[FIELDS][ID]") == fmt.Sprint(leadID) {
				delivered = true
			}
		}
		stats, err := s.queue.Stats(context.Background(), s.portal.MemberID())
		if err != nil {
			t.Fatal(err)
		}
		if delivered && stats.QueueDepth == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("lead %d: delivered %v, pipeline depth %d after 10s", leadID, delivered,
				stats.QueueDepth)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leadOwner(s *intakeStack, id int) string {
	l, _ := s.portal.Lead(id)
	return fmt.Sprint(l["ASSIGNED_BY_ID"])
}
