package queue_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// TestOwnWriteEcho checks that the ONCRMLEADUPDATE the app's own write causes is
// recognised without reading the lead again, and that a person's later edit of a
// routed lead does not route it again.
func TestOwnWriteEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "echo", 2)
	q, _ := e.startQueue(t, testConfig("echo"))
	ctx := context.Background()
	id := p.AddLead(1, map[string]any{"TITLE": "Echo"})
	waitFor(t, 10*time.Second, "lead routed", func() bool { return unassigned(p) == 0 })
	waitFor(t, 10*time.Second, "echo settled", func() bool {
		return depth(t, e, []*bitrixtest.Portal{p}) == 0 && len(p.Deliveries()) >= 3
	})
	lead, _ := p.Lead(id)
	owner := fmt.Sprint(lead["ASSIGNED_BY_ID"])
	p.UpdateLead(1, id, map[string]any{"TITLE": "Echo, edited by a person"})
	waitFor(t, 10*time.Second, "edit settled", func() bool {
		return depth(t, e, []*bitrixtest.Portal{p}) == 0
	})
	time.Sleep(100 * time.Millisecond)
	lead, _ = p.Lead(id)
	if got := fmt.Sprint(lead["ASSIGNED_BY_ID"]); got != owner {
		t.Errorf("owner after a person's edit = %s, want %s (not routed again)", got, owner)
	}
	if n := countBatches(e.fake, p.MemberID(), "crm.lead.get"); n != 1 {
		t.Errorf("lead read in %d batches, want 1 (echo and edit need no read)", n)
	}
	hist, err := q.LeadHistory(ctx, p.MemberID(), int64(id))
	if err != nil || len(hist) != 1 || hist[0].Outcome != queue.OutcomeAssigned {
		t.Fatalf("LeadHistory() = %+v, %v; want one assignment", hist, err)
	}
	if notes := p.Notifications(int(hist[0].UserID)); len(notes) != 1 ||
		!strings.Contains(notes[0], fmt.Sprintf("/crm/lead/details/%d/", id)) {
		t.Errorf("owner's notifications = %q, want one linking the lead", notes)
	}
}

// TestDeadLettersAndRetry checks that a permanent refusal dead-letters the lead with
// its reason, and that Retry routes it once the cause is gone.
func TestDeadLettersAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "dead", 2)
	q, _ := e.startQueue(t, testConfig("dead"))
	ctx := context.Background()
	p.SetAccessDenied(true)
	createLeads([]*bitrixtest.Portal{p}, 3)
	var dead []queue.DeadLetter
	waitFor(t, 10*time.Second, "three dead letters", func() bool {
		dead, _ = q.DeadLetters(ctx, p.MemberID())
		return len(dead) == 3
	})
	for _, d := range dead {
		if d.Reason != "access denied" || d.LeadID == 0 {
			t.Errorf("dead letter = %+v, want reason %q", d, "access denied")
		}
	}
	p.SetAccessDenied(false)
	if n, err := q.Retry(ctx, p.MemberID(), dead[0].ID); err != nil || n != 1 {
		t.Fatalf("Retry(one) = %d, %v; want 1", n, err)
	}
	if _, err := q.Retry(ctx, p.MemberID(), dead[0].ID); err != queue.ErrNoDeadLetter {
		t.Errorf("Retry(same again) error = %v, want ErrNoDeadLetter", err)
	}
	if n, err := q.Retry(ctx, p.MemberID(), ""); err != nil || n != 2 {
		t.Fatalf("Retry(all) = %d, %v; want 2", n, err)
	}
	waitFor(t, 10*time.Second, "retried leads routed", func() bool { return unassigned(p) == 0 })
	if dead, _ := q.DeadLetters(ctx, p.MemberID()); len(dead) != 0 {
		t.Errorf("dead letters after retry = %+v, want none", dead)
	}
	st, err := q.Stats(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range st.RoutedToday {
		total += n
	}
	if total != 3 || st.DeadLetters != 0 {
		t.Errorf("Stats() = %+v; want 3 routed today, no dead letters", st)
	}
	if st.WeightShare[2] != 0.5 || st.WeightShare[3] != 0.5 {
		t.Errorf("Stats().WeightShare = %v, want 0.5 each for two equal reps", st.WeightShare)
	}
}

// TestLimitedPortalDoesNotBlockOthers exhausts one portal's time budget for
// crm.lead.get: its leads wait (paused, not dead-lettered) while another portal's
// leads are routed.
func TestLimitedPortalDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200, OperatingLimit: time.Second})
	limited := e.install(t, "limited", 2)
	free := e.install(t, "free", 2)
	q, _ := e.startQueue(t, testConfig("limits"))
	limited.AddOperatingTime("crm.lead.get", time.Hour)
	createLeads([]*bitrixtest.Portal{limited, free}, 5)
	waitFor(t, 10*time.Second, "free portal routed", func() bool { return unassigned(free) == 0 })
	if n := unassigned(limited); n != 5 {
		t.Errorf("limited portal unassigned = %d, want 5 (paused)", n)
	}
	dead, _ := q.DeadLetters(context.Background(), limited.MemberID())
	if len(dead) != 0 {
		t.Errorf("limited portal dead letters = %+v, want none", dead)
	}
}

// TestBlockedMethodHoldsOnlyItsWork spends the time budget of im.notify.system.add:
// owners are still written and new leads still routed, while the notes wait for the
// method's reset without being retried meanwhile.
func TestBlockedMethodHoldsOnlyItsWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200, OperatingLimit: time.Second,
		OperatingWindow: 6 * time.Second})
	p := e.install(t, "blocked", 2)
	ps := []*bitrixtest.Portal{p}
	q, _ := e.startQueue(t, testConfig("blocked"))
	ctx := context.Background()
	p.AddOperatingTime("im.notify.system.add", time.Hour)
	createLeads(ps, 3)
	waitFor(t, 5*time.Second, "leads routed", func() bool { return unassigned(p) == 0 })
	createLeads(ps, 3)
	waitFor(t, 5*time.Second, "leads routed after the refusal", func() bool {
		return unassigned(p) == 0
	})
	if n := notifications(p, 2, 3); n != 0 {
		t.Fatalf("notifications before the method's reset = %d, want 0", n)
	}
	waitFor(t, 5*time.Second, "stream drained", func() bool {
		n, _ := e.rdb.XLen(ctx, keyspace.EventStream(p.MemberID())).Result()
		return n == 0
	})
	waitFor(t, 15*time.Second, "notes sent after the reset", func() bool {
		return notifications(p, 2, 3) == 6 && depth(t, e, ps) == 0
	})
	// A lead's notes are tried on its turn and on its owner write's echo, then wait.
	if n := countCommands(e.fake, p.MemberID(), "im.notify.system.add"); n > 18 {
		t.Errorf("im.notify.system.add commands = %d, want at most 18 (no retries "+
			"before the reset)", n)
	}
	checkPortal(t, e, p, 6, 2)
	if log, err := q.Log(ctx, p.MemberID(), "held", 10); err != nil || len(log) != 0 {
		t.Errorf("Log(held) = %+v, %v; want none", log, err)
	}
}

// notifications counts the notifications of the given users.
func notifications(p *bitrixtest.Portal, users ...int) int {
	n := 0
	for _, u := range users {
		n += len(p.Notifications(u))
	}
	return n
}

// countCommands counts the portal's batch commands of method.
func countCommands(fake *bitrixtest.Server, memberID, method string) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.MemberID != memberID {
			continue
		}
		for _, m := range r.Batch {
			if m == method {
				n++
			}
		}
	}
	return n
}

// TestHeldLeadRoutedLater holds leads while every rep's working day is closed and
// routes them once one opens it.
func TestHeldLeadRoutedLater(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "held", 2)
	ctx := context.Background()
	e.clockedOut(t, p, 2, 3)
	cfg := testConfig("held")
	cfg.DirectoryTTL = 50 * time.Millisecond
	q, _ := e.startQueue(t, cfg)
	createLeads([]*bitrixtest.Portal{p}, 2)
	waitFor(t, 10*time.Second, "leads held", func() bool {
		st, _ := q.Stats(ctx, p.MemberID())
		return st.HeldNow == 2
	})
	if n := unassigned(p); n != 2 {
		t.Fatalf("unassigned while nobody works = %d, want 2", n)
	}
	u, _ := p.User(3)
	u.Timeman = "OPENED"
	p.UpdateUser(u)
	waitFor(t, 10*time.Second, "held leads routed", func() bool { return unassigned(p) == 0 })
	for _, l := range p.Leads() {
		if got := fmt.Sprint(l["ASSIGNED_BY_ID"]); got != "3" {
			t.Errorf("lead %v owner = %s, want 3 (the only one at work)", l["ID"], got)
		}
	}
	log, err := q.Log(ctx, p.MemberID(), "held", 10)
	if err != nil || len(log) != 2 {
		t.Errorf("Log(held) = %+v, %v; want the two holds", log, err)
	}
}

// TestNotRoutedLeadKeepsOwner leaves a lead from another source alone and says so
// in the log and the stats.
func TestNotRoutedLeadKeepsOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "scope", 2)
	ctx := context.Background()
	s, _, _ := e.engine.Settings(ctx, p.MemberID())
	s.Scope = routing.Scope{Mode: routing.ScopeSources, Sources: []string{"WEB"}}
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
		t.Fatal(err)
	}
	q, _ := e.startQueue(t, testConfig("scope"))
	web := p.AddLead(1, map[string]any{"TITLE": "From the site", "SOURCE_ID": "WEB"})
	call := p.AddLead(1, map[string]any{"TITLE": "From a call", "SOURCE_ID": "CALL"})
	waitFor(t, 10*time.Second, "both settled", func() bool {
		h, _ := q.LeadHistory(ctx, p.MemberID(), int64(call))
		return unassigned(p) == 1 && len(h) == 1
	})
	if l, _ := p.Lead(call); fmt.Sprint(l["ASSIGNED_BY_ID"]) != "1" {
		t.Errorf("call lead owner = %v, want 1 (left alone)", l["ASSIGNED_BY_ID"])
	}
	if l, _ := p.Lead(web); fmt.Sprint(l["ASSIGNED_BY_ID"]) == "1" {
		t.Errorf("web lead owner = 1, want a rep")
	}
	h, _ := q.LeadHistory(ctx, p.MemberID(), int64(call))
	if h[0].Outcome != queue.OutcomeNotRouted || h[0].Reason == "" {
		t.Errorf("history of the call lead = %+v, want not_routed with a reason", h)
	}
	st, _ := q.Stats(ctx, p.MemberID())
	if st.SkipsWeek[routing.NotInSources] != 1 {
		t.Errorf("Stats().SkipsWeek = %v, want one %s", st.SkipsWeek, routing.NotInSources)
	}
}

// countBatches counts the portal's batch requests whose first command is method.
func countBatches(fake *bitrixtest.Server, memberID, method string) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.MemberID == memberID && len(r.Batch) > 0 && r.Batch[0] == method {
			n++
		}
	}
	return n
}

// TestExistingClientOwner gives leads of returning clients to the owner of their
// record: a contact (whatever the phone's format), a company by e-mail, another open
// lead; a contact wins over a company; a closed lead and the lead itself do not
// count.
func TestExistingClientOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "returning", 3)
	ctx := context.Background()
	s, _, _ := e.engine.Settings(ctx, p.MemberID())
	s.ExistingClient = routing.ExistingClient{Enabled: true}
	// Only web leads are routed: the earlier leads below keep their owners.
	s.Scope = routing.Scope{Mode: routing.ScopeSources, Sources: []string{"WEB"}}
	if _, err := e.engine.SaveSettings(ctx, p.MemberID(), s, 1); err != nil {
		t.Fatal(err)
	}
	p.AddContact(4, "+49 (30) 123-4567", "")
	p.AddCompany(3, "", "buyer@example.com")
	p.AddContact(2, "", "both@example.com")
	p.AddCompany(4, "", "both@example.com")
	p.AddLead(1, map[string]any{"TITLE": "Earlier, open", "ASSIGNED_BY_ID": 4,
		"SOURCE_ID": "CALL",
		"PHONE":     []map[string]any{{"VALUE": "+1 555 010 2030", "VALUE_TYPE": "WORK"}}})
	p.AddLead(1, map[string]any{"TITLE": "Earlier, lost", "ASSIGNED_BY_ID": 2,
		"SOURCE_ID": "CALL", "STATUS_ID": "JUNK",
		"EMAIL": []map[string]any{{"VALUE": "gone@example.com", "VALUE_TYPE": "WORK"}}})
	q, _ := e.startQueue(t, testConfig("returning"))
	phone := func(v string) map[string]any {
		return map[string]any{"PHONE": []map[string]any{{"VALUE": v, "VALUE_TYPE": "WORK"}}}
	}
	email := func(v string) map[string]any {
		return map[string]any{"EMAIL": []map[string]any{{"VALUE": v, "VALUE_TYPE": "WORK"}}}
	}
	tests := []struct {
		name   string
		fields map[string]any
		want   string // the owner, or "" for anyone of the team in turn
	}{
		{"contact by phone in another format", phone("+4930 1234567"), "4"},
		{"company by e-mail", email("Buyer@example.com"), "3"},
		{"contact before company", email("both@example.com"), "2"},
		{"open lead", phone("15550102030"), "4"},
		{"closed lead does not count", email("gone@example.com"), ""},
		{"new client", nil, ""},
	}
	ids := make([]int, len(tests))
	for i, tt := range tests {
		f := map[string]any{"TITLE": tt.name, "SOURCE_ID": "WEB"}
		for k, v := range tt.fields {
			f[k] = v
		}
		ids[i] = p.AddLead(1, f)
	}
	// The owner reaches the portal a moment before the decision reaches the log.
	waitFor(t, 10*time.Second, "leads routed and logged", func() bool {
		for _, id := range ids {
			hist, _ := q.LeadHistory(ctx, p.MemberID(), int64(id))
			if owner(p, id) == "1" || len(hist) == 0 {
				return false
			}
		}
		return true
	})
	for i, tt := range tests {
		got := owner(p, ids[i])
		hist, err := q.LeadHistory(ctx, p.MemberID(), int64(ids[i]))
		if err != nil || len(hist) != 1 {
			t.Fatalf("%s: history = %+v, %v; want one decision", tt.name, hist, err)
		}
		returning := strings.Contains(hist[0].Reason, "owner of the existing client")
		switch {
		case tt.want != "" && (got != tt.want || !returning):
			t.Errorf("%s: owner = %s (%s), want %s as the client's owner", tt.name, got,
				hist[0].Reason, tt.want)
		case tt.want == "" && returning:
			t.Errorf("%s: owner = %s (%s), want a rep in turn", tt.name, got, hist[0].Reason)
		}
	}
	if n := countBatches(e.fake, p.MemberID(), "crm.duplicate.findbycomm"); n < 1 {
		t.Errorf("look-up batches = %d, want at least 1", n)
	}
}

// TestForgedUninstallRefused posts an ONAPPUNINSTALL with a wrong application token
// through /events: lifecycle refuses it, the answer is 403 and the portal stays.
func TestForgedUninstallRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "forged", 1)
	form := url.Values{"event": {"ONAPPUNINSTALL"}, "data[CLEAN]": {"1"},
		"auth[member_id]": {p.MemberID()}, "auth[domain]": {p.Domain()},
		"auth[application_token]": {"0123456789abcdef0123456789abcdef"}}
	resp, err := http.PostForm(e.app.URL+"/events", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged ONAPPUNINSTALL = %d, want 403", resp.StatusCode)
	}
	rec, err := e.store.Portal(context.Background(), p.MemberID())
	if err != nil || rec.Status != "active" {
		t.Errorf("portal after a forged uninstall = %+v, %v; want active", rec, err)
	}
}

// TestDeletedLeadIsNoFailure deletes a held lead and a lead whose event waits: both
// leave the pipeline without a dead letter, and the held one leaves the held set.
func TestDeletedLeadIsNoFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "deleted", 1)
	ctx := context.Background()
	e.clockedOut(t, p, 2)
	cfg := testConfig("deleted")
	q, _ := e.startQueue(t, cfg)
	held := p.AddLead(1, map[string]any{"TITLE": "Held, then deleted"})
	waitFor(t, 10*time.Second, "lead held", func() bool {
		st, _ := q.Stats(ctx, p.MemberID())
		return st.HeldNow == 1
	})
	p.DeleteLead(1, held)

	// A lead deleted before the pipeline reads it: its add event waits in the
	// stream while no worker runs.
	e.down.Store(true)
	gone := p.AddLead(1, map[string]any{"TITLE": "Deleted at once"})
	p.DeleteLead(1, gone)
	e.down.Store(false)
	if err := q.Enqueue(ctx, p.MemberID(), queue.Item{Event: "ONCRMLEADADD",
		LeadID: int64(gone)}); err != nil {
		t.Fatal(err)
	}
	ps := []*bitrixtest.Portal{p}
	waitFor(t, 10*time.Second, "both leads left the pipeline", func() bool {
		st, _ := q.Stats(ctx, p.MemberID())
		return st.HeldNow == 0 && depth(t, e, ps) == 0 && pendingCount(t, e, ps) == 0
	})
	if dead, _ := q.DeadLetters(ctx, p.MemberID()); len(dead) != 0 {
		t.Errorf("dead letters = %+v, want none for deleted leads", dead)
	}
}
