package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/intake"
)

// createdSource is the answer that creates an intake source.
type createdSource struct{ ID, URL, Secret string }

// sourceWithViewers creates the intake source name on the portal of the
// administrator's adminToken and returns it with two other sessions: boris, allowed
// to read the portal's settings, and anna as the administrator of another portal.
func sourceWithViewers(t *testing.T, s *stack, p *bitrixtest.Portal, adminToken,
	name string) (src createdSource, reader, otherToken string) {
	t.Helper()
	if code := s.call(adminToken, "POST", "/api/intake", map[string]any{"name": name},
		&src); code != 200 {
		t.Fatalf("POST /api/intake = %d", code)
	}
	allow := map[string]any{"readers": []int{boris.ID}}
	if code := s.call(adminToken, "PUT", "/api/access", allow, nil); code != 200 {
		t.Fatalf("allow a reader = %d", code)
	}
	other := s.newPortal("en")
	s.install(other)
	return src, s.session(p, boris.ID), s.session(other, anna.ID)
}

func TestIntakeOptionsAPI(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)
	src, reader, otherToken := sourceWithViewers(t, s, p, token, "Ads")

	path := "/api/intake/" + src.ID + "/options"
	chosen := intake.Options{CRMSource: "ADVERTISING", AllowResponsible: true, RatePerMinute: 5,
		IdempotencyWindow: 30 * time.Minute}
	for _, tc := range []struct {
		name      string
		token     string
		path      string
		body      map[string]any
		wantCode  int
		wantField string
		want      intake.Options // the options stored afterwards
	}{
		{name: "defaults of a new source", token: token, path: path, body: map[string]any{},
			wantCode: 200, want: intake.Options{CRMSource: "WEB", RatePerMinute: 60,
				IdempotencyWindow: 10 * time.Minute}},
		{name: "every option", token: token, path: path, body: map[string]any{
			"crm_source": "advertising", "allow_responsible": true, "rate_per_minute": 5,
			"idempotency_window_minutes": 30}, wantCode: 200, want: chosen},
		{name: "rate of zero", token: token, path: path,
			body:     map[string]any{"rate_per_minute": 0, "allow_responsible": false},
			wantCode: 422, wantField: "rate_per_minute", want: chosen},
		{name: "rate over the bound", token: token, path: path,
			body:     map[string]any{"rate_per_minute": intake.MaxRatePerMinute + 1},
			wantCode: 422, wantField: "rate_per_minute", want: chosen},
		{name: "window over seven days", token: token, path: path,
			body:     map[string]any{"idempotency_window_minutes": 7*24*60 + 1},
			wantCode: 422, wantField: "idempotency_window_minutes", want: chosen},
		{name: "not a CRM source code", token: token, path: path,
			body:     map[string]any{"crm_source": "web site"},
			wantCode: 422, wantField: "crm_source", want: chosen},
		{name: "a rate that is not a number", token: token, path: path,
			body: map[string]any{"rate_per_minute": "ten"}, wantCode: 400, want: chosen},
		{name: "reader", token: reader, path: path,
			body: map[string]any{"allow_responsible": false}, wantCode: 403, want: chosen},
		{name: "another portal's administrator", token: otherToken, path: path,
			body: map[string]any{"allow_responsible": false}, wantCode: 404, want: chosen},
		{name: "unknown source", token: token, path: "/api/intake/0123abcd/options",
			body: map[string]any{"allow_responsible": false}, wantCode: 404, want: chosen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct {
				Fields  map[string]string `json:"fields"`
				Options struct {
					AllowResponsible bool `json:"allow_responsible"`
				} `json:"options"`
			}
			code := s.call(tc.token, "PATCH", tc.path, tc.body, &got)
			if code != tc.wantCode || (tc.wantField != "" && got.Fields[tc.wantField] == "") {
				t.Errorf("PATCH %s %v = %d with fields %v, want %d naming %q", tc.path, tc.body,
					code, got.Fields, tc.wantCode, tc.wantField)
			}
			stored, err := s.intake.Source(context.Background(), src.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, stored.Options); diff != "" {
				t.Errorf("stored options (-want +got):\n%s", diff)
			}
		})
	}

	var list struct {
		Sources []struct {
			ID      string
			Options map[string]any
		}
	}
	code := s.call(reader, "GET", "/api/intake", nil, &list)
	if code != 200 || len(list.Sources) != 1 {
		t.Fatalf("reader's GET /api/intake = %d, %+v; want the source", code, list)
	}
	wantView := map[string]any{"crm_source": "ADVERTISING", "allow_responsible": true,
		"rate_per_minute": 5.0, "idempotency_window_minutes": 30.0}
	if diff := cmp.Diff(wantView, list.Sources[0].Options); diff != "" {
		t.Errorf("options the reader sees (-want +got):\n%s", diff)
	}

	// The source now lets a post name its responsible person, and it counts posts
	// against its own rate.
	post := func(body string) intakeReply {
		return intakePost(t, src.URL, "application/json", []byte(body),
			map[string]string{handlers.IntakeSecretHeader: src.Secret})
	}
	if r := post(`{"name":"Anna","responsible":3}`); r.Status >= 300 {
		t.Errorf("post naming the responsible = %d %v, want it accepted", r.Status, r.Body)
	}
	limited := false
	for i := range 6 {
		limited = limited || post(fmt.Sprintf(`{"name":"Lead %d"}`, i)).Status == 429
	}
	if !limited {
		t.Errorf("seven posts within a minute were all accepted, want 429 over the rate of 5")
	}
}

func TestIntakeDeadLettersAPI(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)
	settings := map[string]any{"settings": salesTeam()}
	if code := s.call(token, "PUT", "/api/settings", settings, nil); code != 200 {
		t.Fatalf("save settings = %d", code)
	}
	src, reader, otherToken := sourceWithViewers(t, s, p, token, "Landing page")

	// The portal refuses the leads for good: the posts become dead letters.
	p.SetAccessDenied(true)
	post := func(name string) string {
		body := fmt.Sprintf(`{"name":%q,"phone":"+49 30 1234567","email":"anna@example.com"}`,
			name)
		r := intakePost(t, src.URL, "application/json", []byte(body),
			map[string]string{handlers.IntakeSecretHeader: src.Secret})
		if r.Status != http.StatusAccepted {
			t.Fatalf("post while the portal refuses = %d %v, want 202", r.Status, r.Body)
		}
		return fmt.Sprint(r.Body["status_url"])
	}
	statusURLs := []string{post("Anna Petrova")}
	type deadList struct {
		Available   bool `json:"available"`
		Total       int  `json:"total"`
		DeadLetters []struct {
			ID, SourceID, Source, Problem, At string
		} `json:"dead_letters"`
	}
	var dead deadList
	waitFor(t, "intake dead letter", func() bool {
		s.call(reader, "GET", "/api/intake/dead-letters", nil, &dead)
		return dead.Total == 1
	})
	d := dead.DeadLetters[0]
	at, err := time.Parse(time.RFC3339, d.At)
	if !dead.Available || d.Source != "Landing page" || d.Problem == "" || err != nil ||
		time.Since(at) > time.Minute {
		t.Errorf("dead letter = %+v, want the source's name, a problem and a recent time", dead)
	}
	checkIntakeDeadCounts(t, s, reader, 1)
	raw := fmt.Sprintf("%+v", dead)
	for _, personal := range []string{"Anna", "Petrova", "1234567", "example.com"} {
		if strings.Contains(raw, personal) {
			t.Errorf("dead letters show %q of the person: %s", personal, raw)
		}
	}

	retry := "/api/intake/dead-letters/" + d.ID + "/retry"
	for _, tc := range []struct {
		name, token, method, path string
		want                      int
	}{
		{"reader retries", reader, "POST", retry, 403},
		{"reader retries all", reader, "POST", "/api/intake/dead-letters/retry", 403},
		{"another portal retries", otherToken, "POST", retry, 404},
	} {
		if code := s.call(tc.token, tc.method, tc.path, nil, nil); code != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, code, tc.want)
		}
	}
	var others deadList
	s.call(otherToken, "GET", "/api/intake/dead-letters", nil, &others)
	if others.Total != 0 || len(others.DeadLetters) != 0 {
		t.Errorf("another portal's dead letters = %+v, want none", others)
	}
	checkIntakeDeadCounts(t, s, otherToken, 0)

	p.SetAccessDenied(false)
	if code := s.call(token, "POST", retry, nil, nil); code != 200 {
		t.Fatalf("retry = %d, want 200", code)
	}
	waitCreated(t, s, p.Lead, src.Secret, statusURLs[0])
	if code := s.call(token, "POST", retry, nil, nil); code != 404 {
		t.Errorf("second retry of the same dead letter = %d, want 404", code)
	}

	p.SetAccessDenied(true)
	statusURLs = []string{post("Boris"), post("Clara")}
	waitFor(t, "two intake dead letters", func() bool {
		s.call(token, "GET", "/api/intake/dead-letters", nil, &dead)
		return dead.Total == 2
	})
	checkIntakeDeadCounts(t, s, token, 2)
	p.SetAccessDenied(false)
	var all struct{ Retried int }
	if code := s.call(token, "POST", "/api/intake/dead-letters/retry", nil, &all); code != 200 ||
		all.Retried != 2 {
		t.Fatalf("retry all = %d, %+v; want 200 and 2 retried", code, all)
	}
	for _, u := range statusURLs {
		waitCreated(t, s, p.Lead, src.Secret, u)
	}
	s.call(token, "GET", "/api/intake/dead-letters", nil, &dead)
	if dead.Total != 0 {
		t.Errorf("dead letters after retry all = %+v, want none", dead)
	}
	checkIntakeDeadCounts(t, s, token, 0)
}

// checkIntakeDeadCounts checks that the Overview counts want failed intake posts
// and that the Installation tab warns about them when there are any.
func checkIntakeDeadCounts(t *testing.T, s *stack, token string, want int) {
	t.Helper()
	var ov struct {
		IntakeDead struct {
			Available bool `json:"available"`
			Total     int  `json:"total"`
		} `json:"intake_dead"`
	}
	if code := s.call(token, "GET", "/api/overview", nil, &ov); code != 200 {
		t.Fatalf("GET /api/overview = %d", code)
	}
	if !ov.IntakeDead.Available || ov.IntakeDead.Total != want {
		t.Errorf("overview intake_dead = %+v, want available and %d", ov.IntakeDead, want)
	}
	var st struct {
		Problems []struct{ Code, Severity, Title, Action string } `json:"problems"`
	}
	if code := s.call(token, "GET", "/api/state", nil, &st); code != 200 {
		t.Fatalf("GET /api/state = %d", code)
	}
	var warned []string
	for _, pr := range st.Problems {
		if pr.Code == "intake_dead_letters" {
			warned = append(warned, pr.Title)
			if pr.Severity != "warning" || !strings.Contains(pr.Action, "Intake") {
				t.Errorf("problem %+v, want a warning that points to the Intake tab", pr)
			}
		}
	}
	switch {
	case want == 0 && len(warned) != 0:
		t.Errorf("state warns %q, want no intake problem", warned)
	case want > 0 && (len(warned) != 1 || !strings.HasPrefix(warned[0], fmt.Sprint(want, " "))):
		t.Errorf("state warns %q, want one problem counting %d posts", warned, want)
	}
}

// waitCreated waits until the intake post at statusURL is created and the portal
// holds its lead.
func waitCreated(t *testing.T, s *stack, lead func(int) (map[string]any, bool),
	secret, statusURL string) {
	t.Helper()
	target := s.app.URL + statusURL + "?secret=" + url.QueryEscape(secret)
	waitFor(t, "retried post created", func() bool {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		r := intakeSend(t, req)
		if r.Body["status"] != "created" {
			return false
		}
		_, ok := lead(r.leadID())
		return ok
	})
}
