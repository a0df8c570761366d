package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
)

// routedLeads saves the sales team, creates n web leads on the portal as a person
// would, and waits until the pipeline assigned all of them.
func routedLeads(t *testing.T, s *stack, token string, p interface {
	AddLead(int, map[string]any) int
	Lead(int) (map[string]any, bool)
}, n int) []int {
	t.Helper()
	if code := s.call(token, "PUT", "/api/settings", map[string]any{"settings": salesTeam()}, nil); code != 200 {
		t.Fatalf("save settings = %d", code)
	}
	var ids []int
	for i := range n {
		ids = append(ids, p.AddLead(anna.ID, map[string]any{"TITLE": fmt.Sprintf("Lead %d", i+1),
			"SOURCE_ID": "WEB", "ASSIGNED_BY_ID": anna.ID}))
	}
	waitFor(t, "leads routed", func() bool {
		for _, id := range ids {
			lead, _ := p.Lead(id)
			if owner := fmt.Sprint(lead["ASSIGNED_BY_ID"]); owner != "2" && owner != "3" {
				return false
			}
		}
		return true
	})
	return ids
}

func TestLeadViews(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)
	ids := routedLeads(t, s, token, p, 4)

	t.Run("lead tab", func(t *testing.T) {
		waitFor(t, "lead history", func() bool {
			pg := s.openPage(p, boris.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
				map[string]any{"ID": ids[0]})
			return strings.Contains(pg.body, "Assigned to")
		})
		pg := s.openPage(p, boris.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
			map[string]any{"ID": ids[0]})
		owner := map[string]string{"2": "Boris Petrov", "3": "Clara Schmidt"}
		lead, _ := p.Lead(ids[0])
		assigned := "Assigned to " + owner[fmt.Sprint(lead["ASSIGNED_BY_ID"])]
		for _, want := range []string{fmt.Sprintf("#%d", ids[0]), assigned, "Web leads"} {
			if !strings.Contains(pg.body, want) {
				t.Errorf("lead tab lacks %q:\n%.2000s", want, pg.body)
			}
		}
		if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, s.fake.URL()) {
			t.Errorf("lead tab CSP = %q, want the portal among frame-ancestors", csp)
		}
	})

	t.Run("lead tab shows a later change by hand", func(t *testing.T) {
		p.UpdateLead(anna.ID, ids[1], map[string]any{"ASSIGNED_BY_ID": dmitri.ID})
		pg := s.openPage(p, anna.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
			map[string]any{"ID": ids[1]})
		if !strings.Contains(pg.body, "Moved to Dmitri Ivanov") {
			t.Errorf("lead tab after a change by hand lacks the move:\n%.2000s", pg.body)
		}
	})

	t.Run("lead tab shows every move by hand in order", func(t *testing.T) {
		id := ids[2]
		time.Sleep(2 * ownWriteTTL) // past the echo of the app's own write
		page := func() string {
			return s.openPage(p, boris.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
				map[string]any{"ID": id}).body
		}
		p.UpdateLead(anna.ID, id, map[string]any{"ASSIGNED_BY_ID": dmitri.ID})
		waitFor(t, "first move seen by the pipeline", func() bool {
			return strings.Contains(page(), "changed by Anna Admin")
		})
		p.UpdateLead(dmitri.ID, id, map[string]any{"ASSIGNED_BY_ID": clara.ID})
		waitFor(t, "second move seen by the pipeline", func() bool {
			return strings.Contains(page(), "changed by Dmitri Ivanov")
		})
		body := page()
		steps := []string{"Assigned to ", "Moved to Dmitri Ivanov", "changed by Anna Admin",
			"Moved to Clara Schmidt", "before: Dmitri Ivanov", "changed by Dmitri Ivanov"}
		at := 0
		for _, want := range steps {
			i := strings.Index(body[at:], want)
			if i < 0 {
				t.Fatalf("lead tab lacks %q after position %d, in order %q:\n%.3000s",
					want, at, steps, body)
			}
			at += i + len(want)
		}
		if n := strings.Count(body, `data-kind="moved"`); n != 2 {
			t.Errorf("lead tab shows %d moves, want 2 (no repeat of the live owner):\n%.3000s",
				n, body)
		}
	})

	t.Run("lead tab of a lead that does not exist", func(t *testing.T) {
		pg := s.openPage(p, boris.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
			map[string]any{"ID": 999999})
		if pg.status != http.StatusForbidden {
			t.Errorf("lead tab of an unknown lead = %d, want 403", pg.status)
		}
	})

	t.Run("lead tab of a lead from before the install", func(t *testing.T) {
		early := s.newPortal("en")
		id := early.AddLead(anna.ID, map[string]any{"TITLE": "Before", "ASSIGNED_BY_ID": anna.ID})
		s.install(early)
		pg := s.openPage(early, anna.ID, "/placement/lead-tab", "CRM_LEAD_DETAIL_TAB",
			map[string]any{"ID": id})
		if pg.status != 200 || !strings.Contains(pg.body, "has not routed this lead") {
			t.Errorf("lead tab of an unrouted lead = %d:\n%.1000s", pg.status, pg.body)
		}
	})

	t.Run("log", func(t *testing.T) {
		var entries []struct {
			LeadID int64  `json:"lead_id"`
			Person string `json:"person"`
			Rule   string `json:"rule"`
			Reason string `json:"reason"`
		}
		waitFor(t, "log", func() bool {
			s.call(token, "GET", "/api/log", nil, &entries)
			return len(entries) >= len(ids)
		})
		if entries[0].Rule != "Web leads" || entries[0].Reason == "" || entries[0].Person == "" {
			t.Errorf("log line = %+v, want the rule's name, a person and a reason", entries[0])
		}
		s.call(token, "GET", "/api/log?q=Clara", nil, &entries)
		for _, e := range entries {
			if !strings.Contains(e.Person+e.Reason, "Clara") {
				t.Errorf("search for Clara found %+v", e)
			}
		}
		if len(entries) == 0 {
			t.Errorf("search for Clara found nothing; she received leads")
		}
	})

	t.Run("overview", func(t *testing.T) {
		var ov struct {
			Totals struct{ Today, Week int } `json:"totals"`
			People []struct {
				Name       string  `json:"name"`
				Today      int     `json:"today"`
				IdealShare float64 `json:"ideal_share"`
			} `json:"people"`
		}
		waitFor(t, "overview counts", func() bool {
			s.call(token, "GET", "/api/overview", nil, &ov)
			return ov.Totals.Today == len(ids)
		})
		if len(ov.People) != 2 || ov.People[0].Today != 2 || ov.People[0].IdealShare != 0.5 {
			t.Errorf("overview people = %+v, want Boris and Clara with 2 leads each and half the weight", ov.People)
		}
	})

	t.Run("catalog", func(t *testing.T) {
		var cat struct {
			Sources []struct{ ID, Name string } `json:"sources"`
			Users   []struct{ Name string }     `json:"users"`
		}
		if code := s.call(token, "GET", "/api/catalog", nil, &cat); code != 200 {
			t.Fatalf("GET /api/catalog = %d", code)
		}
		found := false
		for _, src := range cat.Sources {
			found = found || src.ID == "WEB"
		}
		if !found || len(cat.Users) != 4 {
			t.Errorf("catalog sources %v, %d users; want WEB among them and 4 users", cat.Sources, len(cat.Users))
		}
	})

	t.Run("try it", func(t *testing.T) {
		draft := salesTeam()
		draft.Teams[0].Members = draft.Teams[0].Members[1:] // Clara alone
		var report struct {
			People []struct {
				Name  string
				Count int
			} `json:"people"`
			Leads []struct{ Person, Rule, Reason string } `json:"leads"`
		}
		body := map[string]any{"settings": draft, "leads": []map[string]string{
			{"TITLE": "Typed in", "SOURCE_ID": "WEB"}}}
		if code := s.call(token, "POST", "/api/simulate", body, &report); code != 200 {
			t.Fatalf("POST /api/simulate = %d", code)
		}
		if len(report.Leads) != 1 || report.Leads[0].Person != "Clara Schmidt" ||
			report.Leads[0].Rule != "Web leads" {
			t.Errorf("trial = %+v, want the typed lead to go to Clara by Web leads", report)
		}
		body = map[string]any{"settings": draft, "recent": 10}
		code := s.call(token, "POST", "/api/simulate", body, &report)
		if code != 200 || len(report.Leads) != len(ids) {
			t.Errorf("trial of the latest leads = %d with %d leads, want 200 and %d",
				code, len(report.Leads), len(ids))
		}
		bad := salesTeam()
		bad.Teams[0].Strategy = "fastest"
		var refused struct {
			Fields map[string]string `json:"fields"`
		}
		body = map[string]any{"settings": bad, "leads": []map[string]string{{"TITLE": "x"}}}
		code = s.call(token, "POST", "/api/simulate", body, &refused)
		if code != http.StatusUnprocessableEntity || refused.Fields["teams[0].strategy"] == "" {
			t.Errorf("trial of invalid settings = %d, fields %v; want 422 naming the strategy",
				code, refused.Fields)
		}
		var versions []any
		s.call(token, "GET", "/api/versions", nil, &versions)
		if len(versions) != 1 {
			t.Errorf("a trial saved settings: %d versions, want 1", len(versions))
		}
	})
}

func TestIntakeAPI(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)

	var created struct{ ID, Name, URL, Secret string }
	landing := map[string]any{"name": "Landing page"}
	if code := s.call(token, "POST", "/api/intake", landing, &created); code != 200 {
		t.Fatalf("POST /api/intake = %d", code)
	}
	if created.Secret == "" || !strings.HasPrefix(created.URL, s.app.URL+"/intake/") {
		t.Errorf("created source = %+v, want a secret and an intake URL on the app", created)
	}
	var list struct {
		Available bool
		Sources   []struct{ ID, Secret string }
	}
	s.call(token, "GET", "/api/intake", nil, &list)
	if !list.Available || len(list.Sources) != 1 || list.Sources[0].Secret != "" {
		t.Errorf("intake list = %+v, want one source and no secret (only its hash is kept)", list)
	}
	var rotated struct{ Secret string }
	if code := s.call(token, "POST", "/api/intake/"+created.ID+"/rotate", nil, &rotated); code != 200 ||
		rotated.Secret == "" || rotated.Secret == created.Secret {
		t.Errorf("rotate = %d with secret %q, want 200 and a new secret", code, rotated.Secret)
	}
	if code := s.call(token, "POST", "/api/intake/nosuchsource/rotate", nil, nil); code != http.StatusNotFound {
		t.Errorf("rotate an unknown source = %d, want 404", code)
	}

	other := s.newPortal("en")
	s.install(other)
	otherToken := s.session(other, anna.ID)
	code := s.call(otherToken, "POST", "/api/intake/"+created.ID+"/rotate", nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("another portal rotating this source = %d, want 404", code)
	}
	code = s.call(otherToken, "DELETE", "/api/intake/"+created.ID, nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("another portal revoking this source = %d, want 404", code)
	}
	if code := s.call(token, "DELETE", "/api/intake/"+created.ID, nil, nil); code != 200 {
		t.Errorf("revoke = %d, want 200", code)
	}
	s.call(token, "GET", "/api/intake", nil, &list)
	if len(list.Sources) != 0 {
		t.Errorf("sources after revoking = %+v, want none", list.Sources)
	}
}

func TestInstallState(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	ctx := context.Background()
	p := s.fake.NewPortal(bitrixtest.PortalOptions{Lang: "ru", Users: []bitrixtest.User{anna, boris}})
	p.RegisterApp(bitrixtest.App{InstallURL: s.app.URL + "/install", HandlerURL: s.app.URL + "/app",
		Scope: "crm,placement,user"})
	s.install(p)
	token := s.session(p, anna.ID)

	type problem struct{ Code, Severity, Title, Action string }
	state := func() (string, map[string]problem) {
		var st struct {
			Status   string    `json:"status"`
			Problems []problem `json:"problems"`
		}
		if code := s.call(token, "GET", "/api/state", nil, &st); code != 200 {
			t.Fatalf("GET /api/state = %d", code)
		}
		byCode := map[string]problem{}
		for _, pr := range st.Problems {
			if pr.Title == "" || pr.Action == "" {
				t.Errorf("problem %+v lacks a title or what to do", pr)
			}
			byCode[pr.Code+":"+pr.Title] = pr
		}
		return st.Status, byCode
	}

	status, problems := state()
	if status != "active" {
		t.Errorf("status = %q, want active", status)
	}
	if _, ok := problems["scope:Не хватает права: im"]; !ok {
		t.Errorf("problems = %v, want the missing im permission named in Russian", problems)
	}
	for key := range problems {
		if strings.Contains(key, "user") {
			t.Errorf("problem %q, want none: the user permission stands for user_brief", key)
		}
	}

	until := time.Now().Add(time.Minute).UnixMilli()
	s.rdb.HSet(ctx, keyspace.RateLimit(p.MemberID()), "until", until)
	if err := s.store.Block(ctx, p.MemberID(), "refresh refused"); err != nil {
		t.Fatal(err)
	}
	status, problems = state()
	if status != "blocked" {
		t.Errorf("status = %q, want blocked", status)
	}
	var codes []string
	for k := range problems {
		codes = append(codes, strings.SplitN(k, ":", 2)[0])
	}
	for _, want := range []string{"blocked", "rate_limited"} {
		if !slices.Contains(codes, want) {
			t.Errorf("problems %v lack %s", codes, want)
		}
	}
	for k, pr := range problems {
		if strings.HasPrefix(k, "blocked:") && !strings.Contains(pr.Action, "refresh refused") {
			t.Errorf("blocked problem says %q, want the portal's reason in it", pr.Action)
		}
	}
}

func TestCatalogCustomFields(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.fake.NewPortal(bitrixtest.PortalOptions{Users: []bitrixtest.User{anna},
		UserFields: []bitrixtest.UserField{{Code: "UF_CRM_REGION", Type: "string", Title: "Region"}}})
	p.RegisterApp(bitrixtest.App{InstallURL: s.app.URL + "/install", HandlerURL: s.app.URL + "/app"})
	s.install(p)
	var cat struct {
		Statuses []struct{ ID string } `json:"statuses"`
		Fields   []struct {
			ID, Title, Type string
		} `json:"fields"`
	}
	if code := s.call(s.session(p, anna.ID), "GET", "/api/catalog", nil, &cat); code != 200 {
		t.Fatalf("GET /api/catalog = %d", code)
	}
	if len(cat.Fields) != 1 || cat.Fields[0].ID != "UF_CRM_REGION" || cat.Fields[0].Title == "" {
		t.Errorf("catalog fields = %+v, want the portal's UF_CRM_REGION with a title", cat.Fields)
	}
	if len(cat.Statuses) == 0 {
		t.Errorf("catalog has no lead statuses from crm.status.list")
	}
}

func TestDeadLetterRetry(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)
	if code := s.call(token, "PUT", "/api/settings", map[string]any{"settings": salesTeam()}, nil); code != 200 {
		t.Fatalf("save settings = %d", code)
	}

	p.SetAccessDenied(true)
	lead := p.AddLead(anna.ID, map[string]any{"TITLE": "Refused", "SOURCE_ID": "WEB",
		"ASSIGNED_BY_ID": anna.ID})
	var ov struct {
		DeadLetters []struct {
			ID     string `json:"id"`
			LeadID int64  `json:"lead_id"`
			Error  string `json:"error"`
		} `json:"dead_letters"`
	}
	waitFor(t, "dead letter", func() bool {
		s.call(token, "GET", "/api/overview", nil, &ov)
		return len(ov.DeadLetters) > 0
	})
	p.SetAccessDenied(false)
	dead := ov.DeadLetters[0]
	if dead.LeadID != int64(lead) || dead.Error == "" {
		t.Errorf("dead letter = %+v, want lead %d with a reason", dead, lead)
	}
	if code := s.call(token, "POST", "/api/dead-letters/"+dead.ID+"/retry", nil, nil); code != 200 {
		t.Fatalf("retry = %d, want 200", code)
	}
	waitFor(t, "retried lead routed", func() bool {
		l, _ := p.Lead(lead)
		return fmt.Sprint(l["ASSIGNED_BY_ID"]) != fmt.Sprint(anna.ID)
	})
	if code := s.call(token, "POST", "/api/dead-letters/"+dead.ID+"/retry", nil, nil); code != 404 {
		t.Errorf("second retry of the same dead letter = %d, want 404", code)
	}
}

// TestInstallStateWithREADMEScopes installs with exactly the permissions the README
// tells administrators to grant: the Installation tab finds none missing.
func TestInstallStateWithREADMEScopes(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.fake.NewPortal(bitrixtest.PortalOptions{Users: []bitrixtest.User{anna, boris}})
	p.RegisterApp(bitrixtest.App{InstallURL: s.app.URL + "/install", HandlerURL: s.app.URL + "/app",
		Scope: "crm,user_brief,placement,im,timeman"})
	s.install(p)
	token := s.session(p, anna.ID)
	var st struct {
		Status   string `json:"status"`
		Problems []struct{ Code, Title string }
	}
	if code := s.call(token, "GET", "/api/state", nil, &st); code != 200 {
		t.Fatalf("GET /api/state = %d", code)
	}
	if st.Status != "active" || len(st.Problems) != 0 {
		t.Errorf("state = %+v, want active with no problems", st)
	}
}
