package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// intakeStack is the intake endpoint over real parts: Redis, the fake portal with
// the app installed, routing with a round-robin team of users 2 and 3, the intake
// workers, and the handler on a loopback server.
type intakeStack struct {
	portal  *bitrixtest.Portal
	fake    *bitrixtest.Server
	sources *intake.Store
	service *intake.Service
	url     string
	queue   *queue.Queue // nil without the pipeline
	members *oauth.Store
}

func newIntakeStack(t *testing.T, wait time.Duration) *intakeStack {
	t.Helper()
	return buildIntakeStack(t, wait, false)
}

// buildIntakeStack builds the stack; with pipeline, the portal's ONCRMLEADADD and
// ONCRMLEADUPDATE go to the app's event receiver and the lead pipeline runs too.
func buildIntakeStack(t *testing.T, wait time.Duration, pipeline bool) *intakeStack {
	t.Helper()
	ctx := context.Background()
	rdb := redistest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fake := bitrixtest.Start(t, bitrixtest.Options{Rate: -1})
	portal := fake.NewPortal(bitrixtest.PortalOptions{Users: []bitrixtest.User{
		{ID: 1, Name: "Ada", Admin: true}, {ID: 2, Name: "Ann"}, {ID: 3, Name: "Bob"},
		{ID: 4, Name: "Dora", Dismissed: true},
	}})
	members := oauth.NewStore(rdb, oauth.Config{ClientID: fake.ClientID(),
		ClientSecret: fake.ClientSecret(), OAuthURL: fake.OAuthURL()}, log)
	tok := portal.Tokens(1)
	_, err := members.SaveInstall(ctx, oauth.Install{MemberID: portal.MemberID(),
		Domain: portal.Domain(), ClientEndpoint: portal.ClientEndpoint(),
		ServerEndpoint: fake.OAuthURL() + "/rest/", Scope: "crm,user,im", InstalledBy: 1,
		Installed: true, ApplicationToken: portal.ApplicationToken(),
		Tokens: oauth.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
			Expiry: tok.Expires, UserID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	engine := routing.NewEngine(rdb, log)
	_, err = engine.SaveSettings(ctx, portal.MemberID(), &routing.Settings{
		Teams: []routing.Team{{ID: "sales", Name: "Sales", Strategy: routing.RoundRobin,
			Members: []routing.Member{{UserID: 2}, {UserID: 3}}}},
		Default: routing.Target{Kind: routing.TargetTeam, Team: "sales"},
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	client := func(memberID string) *bitrix.Client {
		return bitrix.NewClient(memberID, members.Auth(memberID),
			bitrix.Options{MaxRetries: -1, Timeout: 5 * time.Second})
	}
	sources := intake.NewStore(rdb)
	svc := intake.New(rdb, func(m string) intake.Caller { return client(m) },
		&intake.EngineRouter{Engine: engine, Clients: client, RDB: rdb},
		intake.Config{PollInterval: 20 * time.Millisecond, BackoffBase: 20 * time.Millisecond,
			BackoffMax: 100 * time.Millisecond, ClaimIdle: 100 * time.Millisecond}, log)
	svc.Start(ctx)
	t.Cleanup(func() { svc.Stop(context.Background()) })

	gin.SetMode(gin.TestMode)
	r := gin.New()
	(&handlers.Intake{Sources: sources, Service: svc, Portals: members, Log: log,
		Wait: wait}).Register(r)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	s := &intakeStack{portal: portal, fake: fake, sources: sources, service: svc, url: ts.URL,
		members: members}
	if pipeline {
		s.queue = queue.New(rdb, engine, members, log, queue.Config{Poll: 10 * time.Millisecond,
			RetryBase: 20 * time.Millisecond, SweepEvery: -1})
		if err := s.queue.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.queue.Stop(context.Background()) })
		(&handlers.Events{Tokens: members, Queue: s.queue, Log: log}).Register(r)
		for _, ev := range []string{bitrix.EventLeadAdd, bitrix.EventLeadUpdate} {
			err := client(portal.MemberID()).Call(ctx, "event.bind",
				map[string]any{"event": ev, "handler": ts.URL + "/events"}, nil)
			if err != nil {
				t.Fatalf("event.bind %s: %v", ev, err)
			}
		}
	}
	return s
}

// source creates an intake source and returns its URL and secret.
func (s *intakeStack) source(t *testing.T, opts intake.Options) (string, string) {
	t.Helper()
	src, secret, err := s.sources.Create(context.Background(), s.portal.MemberID(), "Landing", opts)
	if err != nil {
		t.Fatal(err)
	}
	return s.url + src.Path(), secret
}

// intakeReply is a decoded answer of the intake endpoint.
type intakeReply struct {
	Status  int
	Retry   string
	Body    map[string]any
	Fields  map[string]string
	Ignored []string
}

func (r intakeReply) leadID() int {
	n, _ := r.Body["lead_id"].(float64)
	return int(n)
}

func intakeSend(t *testing.T, req *http.Request) intakeReply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	reply := intakeReply{Status: resp.StatusCode, Retry: resp.Header.Get("Retry-After"), Body: body}
	if f, ok := body["fields"].(map[string]any); ok {
		reply.Fields = map[string]string{}
		for k, v := range f {
			reply.Fields[k] = fmt.Sprint(v)
		}
	}
	if ig, ok := body["ignored"].([]any); ok {
		for _, v := range ig {
			reply.Ignored = append(reply.Ignored, fmt.Sprint(v))
		}
	}
	return reply
}

func intakePost(t *testing.T, target, contentType string, body []byte,
	header map[string]string) intakeReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return intakeSend(t, req)
}

func TestIntakeCreatesLeadsInEveryShape(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 5*time.Second)
	target, secret := s.source(t, intake.Options{})
	var multi bytes.Buffer
	mw := multipart.NewWriter(&multi)
	mw.WriteField("name", "Ivan")
	mw.WriteField("phone", "+7 912 000 11 22")
	mw.WriteField("secret", secret)
	mw.Close()

	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
		header      map[string]string
		wantName    string
	}{
		{"JSON, secret in header", target, "application/json",
			`{"name":"Anna","phone":"+7 912 345 67 89","utm_source":"google","formid":"f1"}`,
			map[string]string{handlers.IntakeSecretHeader: secret}, "Anna"},
		{"Bitrix24 JSON, secret in query", target + "?secret=" + url.QueryEscape(secret),
			"application/json",
			`{"fields":{"NAME":"Boris","EMAIL":[{"VALUE":"b@example.com","VALUE_TYPE":"WORK"}]}}`,
			nil, "Boris"},
		{"flat form, secret in a field", target, "application/x-www-form-urlencoded",
			"secret=" + url.QueryEscape(secret) + "&first_name=Clara&last_name=Ng&email=c%40example.com",
			nil, "Clara"},
		{"Bitrix24 form", target, "application/x-www-form-urlencoded",
			"fields[NAME]=Dmitri&fields[PHONE][0][VALUE]=89001234567&fields[PHONE][0][VALUE_TYPE]=MOBILE",
			map[string]string{handlers.IntakeSecretHeader: secret}, "Dmitri"},
		{"multipart form", target, mw.FormDataContentType(), multi.String(), nil, "Ivan"},
	}
	owners := map[int]int{}
	for _, tt := range tests {
		reply := intakePost(t, tt.target, tt.contentType, []byte(tt.body), tt.header)
		if reply.Status != http.StatusCreated || reply.Body["status"] != "created" {
			t.Fatalf("%s: answer %d %v, want 201 created", tt.name, reply.Status, reply.Body)
		}
		lead, ok := s.portal.Lead(reply.leadID())
		if !ok || lead["NAME"] != tt.wantName {
			t.Fatalf("%s: lead %d = %v, want NAME %s", tt.name, reply.leadID(), lead, tt.wantName)
		}
		owner := fmt.Sprint(lead["ASSIGNED_BY_ID"])
		if owner != fmt.Sprint(reply.Body["responsible"]) {
			t.Errorf("%s: lead owner %s, answer says %v", tt.name, owner, reply.Body["responsible"])
		}
		var id int
		fmt.Sscan(owner, &id)
		owners[id]++
	}
	// Five leads round-robin between Ann (2) and Bob (3).
	if owners[2] != 3 || owners[3] != 2 {
		t.Errorf("owners = %v, want 3 leads for user 2 and 2 for user 3", owners)
	}
}

func TestIntakeRefusesBadPosts(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 5*time.Second)
	target, secret := s.source(t, intake.Options{})
	auth := map[string]string{handlers.IntakeSecretHeader: secret}
	big := `{"name":"Anna","comment":"` + strings.Repeat("x", intake.MaxBody) + `"}`
	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
		header      map[string]string
		status      int
		code        string
		fields      map[string]string
	}{
		{"wrong secret", target, "application/json", `{"name":"Anna"}`,
			map[string]string{handlers.IntakeSecretHeader: secret + "x"}, 401, "bad_secret", nil},
		{"no secret", target, "application/json", `{"name":"Anna"}`, nil, 401, "missing_secret", nil},
		{"unknown source", s.url + "/intake/0123456789abcdef0123456789abcdef", "application/json",
			`{"name":"Anna"}`, auth, 404, "unknown_source", nil},
		{"malformed JSON", target, "application/json", `{"name":"Anna"`, auth, 400, "invalid_lead",
			map[string]string{"body": "not a JSON object: the body ended early"}},
		{"bad fields", target, "application/json", `{"phone":"call me","email":"nope"}`, auth, 400,
			"invalid_lead", map[string]string{"phone": "not a phone number",
				"email": "not an e-mail address"}},
		{"no contact", target, "application/json", `{"comment":"hello"}`, auth, 400, "invalid_lead",
			map[string]string{"contact": "at least one of name, phone, email is required"}},
		{"override not allowed", target, "application/json", `{"name":"A","responsible":3}`, auth,
			400, "invalid_lead", nil},
		{"oversize", target, "application/json", big, auth, 413, "body_too_large", nil},
		{"XML", target, "application/xml", `<lead/>`, auth, 415, "unsupported_media_type", nil},
	}
	for _, tt := range tests {
		reply := intakePost(t, tt.target, tt.contentType, []byte(tt.body), tt.header)
		if reply.Status != tt.status || reply.Body["error"] != tt.code {
			t.Errorf("%s: answer %d %v, want %d %s", tt.name, reply.Status, reply.Body,
				tt.status, tt.code)
		}
		if msg, _ := reply.Body["message"].(string); msg == "" {
			t.Errorf("%s: answer has no message for people", tt.name)
		}
		for k, v := range tt.fields {
			if reply.Fields[k] != v {
				t.Errorf("%s: fields[%s] = %q, want %q", tt.name, k, reply.Fields[k], v)
			}
		}
	}
	if n := s.portal.LeadCount(); n != 0 {
		t.Errorf("refused posts created %d leads", n)
	}
}

func TestIntakeRefusesOversizeStream(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 0)
	target, secret := s.source(t, intake.Options{})
	// No Content-Length: the limit applies while reading.
	body := io.MultiReader(strings.NewReader(`{"name":"Anna","comment":"`),
		strings.NewReader(strings.Repeat("x", 2*intake.MaxBody)), strings.NewReader(`"}`))
	req, _ := http.NewRequest(http.MethodPost, target, body)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(handlers.IntakeSecretHeader, secret)
	if reply := intakeSend(t, req); reply.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize body: answer %d %v, want 413", reply.Status, reply.Body)
	}
}

func TestIntakeRepeatedPostAndStatus(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 5*time.Second)
	target, secret := s.source(t, intake.Options{})
	auth := map[string]string{handlers.IntakeSecretHeader: secret, "Idempotency-Key": "order-9"}
	first := intakePost(t, target, "application/json", []byte(`{"name":"Anna"}`), auth)
	again := intakePost(t, target, "application/json", []byte(`{"name":"Anna","title":"retry"}`), auth)
	if first.Status != 201 || again.Status != 200 || again.leadID() != first.leadID() ||
		again.Body["duplicate"] != true {
		t.Errorf("repeat = %d %v, first = %d %v; want 200 with the first lead",
			again.Status, again.Body, first.Status, first.Body)
	}

	statusURL := strings.TrimSuffix(s.url, "/") + fmt.Sprint(first.Body["status_url"])
	req, _ := http.NewRequest(http.MethodGet, statusURL, nil)
	req.Header.Set(handlers.IntakeSecretHeader, secret)
	if st := intakeSend(t, req); st.Status != 200 || st.leadID() != first.leadID() {
		t.Errorf("status = %d %v, want 200 with lead %d", st.Status, st.Body, first.leadID())
	}
	req, _ = http.NewRequest(http.MethodGet, statusURL+"?secret=wrong", nil)
	if st := intakeSend(t, req); st.Status != 401 {
		t.Errorf("status with a wrong secret = %d, want 401", st.Status)
	}
	unknown := target + "/status/abcdef?secret=" + url.QueryEscape(secret)
	req, _ = http.NewRequest(http.MethodGet, unknown, nil)
	if st := intakeSend(t, req); st.Status != 404 || st.Body["error"] != "unknown_post" {
		t.Errorf("status of an unknown post = %d %v, want 404 unknown_post", st.Status, st.Body)
	}
	if n := s.portal.LeadCount(); n != 1 {
		t.Errorf("portal has %d leads, want 1", n)
	}
}

func TestIntakeRateLimit(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 0)
	target, secret := s.source(t, intake.Options{RatePerMinute: 2})
	auth := map[string]string{handlers.IntakeSecretHeader: secret}
	for i := range 2 {
		body := fmt.Sprintf(`{"name":"Anna %d"}`, i)
		if r := intakePost(t, target, "application/json", []byte(body), auth); r.Status != 202 {
			t.Fatalf("post %d: answer %d %v, want 202", i, r.Status, r.Body)
		}
	}
	r := intakePost(t, target, "application/json", []byte(`{"name":"Anna 3"}`), auth)
	if r.Status != http.StatusTooManyRequests || r.Retry == "" {
		t.Errorf("third post: answer %d Retry-After %q, want 429 with Retry-After", r.Status, r.Retry)
	}
}

func TestIntakeAcceptsWhilePortalIsDown(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 200*time.Millisecond)
	target, secret := s.source(t, intake.Options{})
	s.fake.SetFaults(bitrixtest.Faults{Error5xx: 1})
	r := intakePost(t, target, "application/json", []byte(`{"name":"Anna"}`),
		map[string]string{handlers.IntakeSecretHeader: secret})
	if r.Status != http.StatusAccepted || r.Body["status"] != "pending" || r.Body["intake_id"] == "" {
		t.Fatalf("post while the portal is down: %d %v, want 202 pending", r.Status, r.Body)
	}
	s.fake.SetFaults(bitrixtest.Faults{})
	statusURL := s.url + fmt.Sprint(r.Body["status_url"]) + "?secret=" + url.QueryEscape(secret)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, statusURL, nil)
		st := intakeSend(t, req)
		if st.Body["status"] == "created" {
			if _, ok := s.portal.Lead(st.leadID()); !ok {
				t.Errorf("status names lead %d, which the portal lacks", st.leadID())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("post still %v 10s after the portal came back", st.Body["status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntakeRefusesPostsForUninstalledPortal(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 0)
	target, secret := s.source(t, intake.Options{})
	if err := s.members.Uninstall(context.Background(), s.portal.MemberID()); err != nil {
		t.Fatal(err)
	}
	r := intakePost(t, target, "application/json", []byte(`{"name":"Anna"}`),
		map[string]string{handlers.IntakeSecretHeader: secret})
	if r.Status != http.StatusGone || r.Body["error"] != "portal_gone" {
		t.Errorf("post for an uninstalled portal: %d %v, want 410 portal_gone", r.Status, r.Body)
	}
}

func TestIntakeRefusesPostStoredAfterUninstall(t *testing.T) {
	t.Parallel()
	s := newIntakeStack(t, 0)
	target, secret := s.source(t, intake.Options{})
	// Without Portals the handler does not look at the portal first: the post
	// reaches the store, which refuses it there.
	r := gin.New()
	(&handlers.Intake{Sources: s.sources, Service: s.service,
		Log: slog.New(slog.DiscardHandler)}).Register(r)
	ts := httptest.NewServer(r)
	t.Cleanup(ts.Close)
	if err := s.members.Uninstall(context.Background(), s.portal.MemberID()); err != nil {
		t.Fatal(err)
	}
	target = ts.URL + strings.TrimPrefix(target, s.url)
	reply := intakePost(t, target, "application/json", []byte(`{"name":"Anna"}`),
		map[string]string{handlers.IntakeSecretHeader: secret})
	if reply.Status != http.StatusGone || reply.Body["error"] != "portal_gone" {
		t.Errorf("post stored after an uninstall: %d %v, want 410 portal_gone",
			reply.Status, reply.Body)
	}
}
