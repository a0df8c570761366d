package bitrixtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInstallEventWireBody(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONAPPINSTALL")
	waitDeliveries(t, in.portal, 1)
	got := in.rc.all()
	if len(got) != 1 {
		t.Fatalf("received %d POSTs, want 1", len(got))
	}
	r := got[0]
	if r.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", r.contentType)
	}
	f := r.form
	want := map[string]string{
		"event": "ONAPPINSTALL", "data[VERSION]": "1", "data[ACTIVE]": "Y",
		"data[INSTALLED]": "Y", "data[LANGUAGE_ID]": "en", "auth[domain]": in.portal.Domain(),
		"auth[member_id]": in.portal.MemberID(), "auth[status]": "L", "auth[user_id]": "1",
		"auth[client_endpoint]":   in.portal.ClientEndpoint(),
		"auth[server_endpoint]":   in.srv.OAuthURL() + "/rest/",
		"auth[application_token]": in.portal.ApplicationToken(),
		"auth[expires_in]":        "3600",
	}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, f.Get(k), v)
		}
	}
	for _, k := range []string{"auth[access_token]", "auth[refresh_token]", "auth[expires]",
		"ts", "event_handler_id"} {
		if f.Get(k) == "" {
			t.Errorf("ONAPPINSTALL lacks %s", k)
		}
	}
	if !strings.HasPrefix(r.body, "event=ONAPPINSTALL&event_handler_id=") {
		t.Errorf("body starts %.60q, want event then event_handler_id", r.body)
	}
	// The install tokens work against the portal and refresh at the OAuth server.
	if a := postJSON(t, in.portal.ClientEndpoint(), "app.info", f.Get("auth[access_token]"),
		nil); a.Status != 200 || a.Body["result"].(map[string]any)["INSTALLED"] != true {
		t.Errorf("app.info with install token = %d %s", a.Status, a.Raw)
	}
	if a := refresh(t, in.srv, f.Get("auth[refresh_token]"), false); a.Status != 200 {
		t.Errorf("refresh install token = %d %s", a.Status, a.Raw)
	}
}

func TestLeadEventsForEveryChange(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{DeliveryWorkers: 1}, "ONCRMLEADADD", "ONCRMLEADUPDATE")
	p := in.portal
	ep := p.ClientEndpoint()

	uiLead := p.AddLead(2, map[string]any{"TITLE": "typed in the UI"})
	rest := postJSON(t, ep, "crm.lead.add", in.tok.AccessToken,
		map[string]any{"fields": map[string]any{"TITLE": "through REST"}})
	restLead := int(rest.Body["result"].(float64))
	postJSON(t, ep, "crm.lead.update", in.tok.AccessToken,
		map[string]any{"id": restLead, "fields": map[string]any{"ASSIGNED_BY_ID": 2}})
	p.UpdateLead(0, uiLead, map[string]any{"STATUS_ID": "IN_PROCESS"}) // automation

	ds := waitDeliveries(t, p, 4)
	type ev struct{ name, id, user string }
	var got []ev
	for _, d := range ds {
		got = append(got, ev{d.Form.Get("event"), d.Form.Get("data[FIELDS][ID]"),
			d.Form.Get("auth[user_id]")})
		if d.Form.Get("auth[refresh_token]") != "" {
			t.Errorf("%s carries a refresh token", d.Event)
		}
		if d.Form.Get("auth[application_token]") != p.ApplicationToken() {
			t.Errorf("%s application_token = %q", d.Event, d.Form.Get("auth[application_token]"))
		}
		if d.Status != 200 {
			t.Errorf("delivery status = %d (%s)", d.Status, d.Err)
		}
	}
	want := []ev{
		{"ONCRMLEADADD", strconv.Itoa(uiLead), "2"},
		{"ONCRMLEADADD", strconv.Itoa(restLead), "1"},
		{"ONCRMLEADUPDATE", strconv.Itoa(restLead), "1"},
		{"ONCRMLEADUPDATE", strconv.Itoa(uiLead), ""},
	}
	if len(got) != len(want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("delivery %d = %v, want %v", i, got[i], want[i])
		}
	}
	if ds[3].Form.Get("auth[access_token]") != "" {
		t.Errorf("an automation's event carries an access token")
	}
}

func TestNoEventsBeforeInstallFinished(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	rc := newReceiver(t)
	p.RegisterApp(App{InstallURL: rc.srv.URL + "/install", HandlerURL: rc.srv.URL + "/app"})
	tok := p.Tokens(1)
	postJSON(t, p.ClientEndpoint(), "event.bind", tok.AccessToken,
		map[string]any{"event": "ONCRMLEADADD", "handler": rc.url()})
	p.AddLead(1, map[string]any{"TITLE": "too early"})
	if err := p.FinishInstall(1); err != nil {
		t.Fatal(err)
	}
	p.AddLead(1, map[string]any{"TITLE": "after install"})
	waitDeliveries(t, p, 1)
	time.Sleep(20 * time.Millisecond) // would the early lead's event still come?
	ds := p.Deliveries()
	if len(ds) != 1 || ds[0].Form.Get("data[FIELDS][ID]") != "2" {
		t.Errorf("deliveries = %v, want only lead 2", ds)
	}
}

func TestFinishInstallNeedsAdmin(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{Users: []User{{ID: 1, Admin: true}, {ID: 2}}})
	p.RegisterApp(App{HandlerURL: "http://app.example/app", InstallURL: "http://app.example/i"})
	if err := p.FinishInstall(2); err == nil {
		t.Errorf("FinishInstall by a non-admin succeeded")
	}
	if p.Installed() {
		t.Errorf("installed after a refused FinishInstall")
	}
}

func TestEventBindErrors(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONCRMLEADADD")
	user := in.portal.Tokens(2)
	tests := []struct {
		name       string
		token      string
		params     map[string]any
		wantStatus int
		wantCode   string
	}{
		{"duplicate", in.tok.AccessToken,
			map[string]any{"event": "onCrmLeadAdd", "handler": in.rc.url()}, 400, "ERROR_CORE"},
		{"unknown event", in.tok.AccessToken,
			map[string]any{"event": "ONNOTHING", "handler": in.rc.url()}, 400,
			"ERROR_EVENT_NOT_FOUND"},
		{"bad protocol", in.tok.AccessToken,
			map[string]any{"event": "ONCRMLEADUPDATE", "handler": "ftp://a.example/x"}, 400,
			"ERROR_UNSUPPORTED_PROTOCOL"},
		{"no dotted host", in.tok.AccessToken,
			map[string]any{"event": "ONCRMLEADUPDATE", "handler": "http://localhost/x"}, 400,
			"ERROR_WRONG_HANDLER_URL"},
		{"offline by non-admin", user.AccessToken,
			map[string]any{"event": "ONCRMLEADUPDATE", "event_type": "offline"}, 403,
			"ACCESS_DENIED"},
		{"offline by admin", in.tok.AccessToken,
			map[string]any{"event": "ONCRMLEADUPDATE", "event_type": "offline"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, in.portal.ClientEndpoint(), "event.bind", tt.token, tt.params)
			if a.Status != tt.wantStatus || a.code() != tt.wantCode {
				t.Errorf("event.bind = %d %q, want %d %q (%s)", a.Status, a.code(),
					tt.wantStatus, tt.wantCode, a.Raw)
			}
		})
	}
	got := postJSON(t, in.portal.ClientEndpoint(), "event.get", in.tok.AccessToken, nil)
	rows := got.Body["result"].([]any)
	if len(rows) != 2 {
		t.Fatalf("event.get = %s, want 2 handlers", got.Raw)
	}
	first := rows[0].(map[string]any)
	if first["event"] != "ONCRMLEADADD" || first["handler"] != in.rc.url() ||
		first["auth_type"] != "0" || first["offline"] != float64(0) {
		t.Errorf("event.get row = %v", first)
	}
	un := postJSON(t, in.portal.ClientEndpoint(), "event.unbind", in.tok.AccessToken,
		map[string]any{"event": "ONCRMLEADADD", "handler": in.rc.url()})
	if un.Body["result"].(map[string]any)["count"] != float64(1) {
		t.Errorf("event.unbind = %s, want count 1", un.Raw)
	}
}

func TestOfflineEventsKeepLatestPerObject(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	ep := p.ClientEndpoint()
	tok := in.tok.AccessToken
	postJSON(t, ep, "event.bind", tok, map[string]any{"event": "ONCRMLEADUPDATE",
		"event_type": "offline"})
	id := p.AddLead(2, nil)
	for range 5 {
		p.UpdateLead(2, id, map[string]any{"COMMENTS": "again"})
	}
	other := p.AddLead(2, nil)
	p.UpdateLead(2, other, map[string]any{"COMMENTS": "x"})
	// The app's own change through REST is not queued for it.
	postJSON(t, ep, "crm.lead.update", tok, map[string]any{"id": id,
		"fields": map[string]any{"COMMENTS": "mine"}})

	a := postJSON(t, ep, "event.offline.get", tok, map[string]any{"clear": 0, "limit": 1})
	res := a.Body["result"].(map[string]any)
	events := res["events"].([]any)
	if len(events) != 1 || res["process_id"] == nil {
		t.Fatalf("event.offline.get = %s", a.Raw)
	}
	row := events[0].(map[string]any)
	data := row["EVENT_DATA"].(map[string]any)["FIELDS"].(map[string]any)
	if row["EVENT_NAME"] != "ONCRMLEADUPDATE" || data["ID"] != strconv.Itoa(id) {
		t.Errorf("first row = %v", row)
	}
	process := res["process_id"].(string)
	rest := postJSON(t, ep, "event.offline.get", tok, map[string]any{})
	restEvents := rest.Body["result"].(map[string]any)["events"].([]any)
	if len(restEvents) != 1 {
		t.Errorf("second read = %s, want the other lead only", rest.Raw)
	}
	postJSON(t, ep, "event.offline.clear", tok, map[string]any{"process_id": process})
	if left := p.OfflineEvents(); len(left) != 0 {
		t.Errorf("offline queue after clear = %v", left)
	}
}

func TestUninstallEvent(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONAPPUNINSTALL")
	p := in.portal
	p.Uninstall(true)
	ds := waitDeliveries(t, p, 1)
	f := ds[0].Form
	if f.Get("event") != "ONAPPUNINSTALL" || f.Get("data[CLEAN]") != "1" ||
		f.Get("auth[application_token]") == "" || f.Get("auth[member_id]") != p.MemberID() {
		t.Errorf("ONAPPUNINSTALL = %s", ds[0].Body)
	}
	if f.Get("auth[access_token]") != "" || f.Get("auth[refresh_token]") != "" {
		t.Errorf("ONAPPUNINSTALL carries tokens: %s", ds[0].Body)
	}
	a := postJSON(t, p.ClientEndpoint(), "profile", in.tok.AccessToken, nil)
	if a.code() != "invalid_token" {
		t.Errorf("token after uninstall = %d %q, want invalid_token", a.Status, a.code())
	}
	if r := refresh(t, in.srv, in.tok.RefreshToken, false); r.code() != "invalid_grant" {
		t.Errorf("refresh after uninstall = %q, want invalid_grant", r.code())
	}
	if evs, pls := p.Bindings(); len(evs)+len(pls) != 0 {
		t.Errorf("bindings survive uninstall: %v %v", evs, pls)
	}
}

func TestUpdateAppDropsBindings(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONAPPUPDATE", "ONCRMLEADADD")
	p := in.portal
	p.UpdateApp("2")
	ds := waitDeliveries(t, p, 1)
	if ds[0].Event != "ONAPPUPDATE" || ds[0].Form.Get("auth[refresh_token]") == "" ||
		ds[0].Form.Get("data[VERSION]") != "2" {
		t.Errorf("ONAPPUPDATE = %s", ds[0].Body)
	}
	if evs, _ := p.Bindings(); len(evs) != 0 {
		t.Errorf("bindings after update = %v", evs)
	}
}

func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{DeliveryWorkers: 1}, "ONCRMLEADADD")
	in.srv.SetFaults(Faults{Seed: 7, DropEvents: 0.3, DuplicateEvents: 0.3})
	p := in.portal
	for range 40 {
		p.AddLead(1, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitDeliveries(ctx, 40); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	var dropped, dup int
	for _, d := range p.Deliveries() {
		if d.Dropped {
			dropped++
		}
		if d.Duplicate {
			dup++
		}
	}
	if dropped == 0 || dup == 0 {
		t.Errorf("dropped %d, duplicated %d; want some of each", dropped, dup)
	}
	if got := len(in.rc.all()); got != len(p.Deliveries())-dropped {
		t.Errorf("receiver got %d POSTs, want %d", got, len(p.Deliveries())-dropped)
	}
}

func TestDeliveriesServePortalsInTurn(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{DeliveryWorkers: 1})
	rc := newReceiver(t)
	var ps []*Portal
	for _, name := range []string{"busy", "quiet"} {
		p := s.NewPortal(PortalOptions{Name: name})
		p.RegisterApp(App{APIOnly: true})
		p.mu.Lock()
		p.bindLocked(EventBinding{Event: "ONCRMLEADADD", Handler: rc.url()})
		p.mu.Unlock()
		ps = append(ps, p)
	}
	busy, quiet := ps[0], ps[1]
	for range 200 {
		busy.AddLead(1, nil)
	}
	quiet.AddLead(1, nil)
	waitDeliveries(t, quiet, 1)
	if n := len(busy.Deliveries()); n > 20 {
		t.Errorf("the quiet portal's event waited for %d of the busy portal's", n)
	}
}

func TestOfflineEventNotification(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONOFFLINEEVENT")
	p := in.portal
	postJSON(t, p.ClientEndpoint(), "event.bind", in.tok.AccessToken,
		map[string]any{"event": "ONCRMLEADADD", "event_type": "offline"})
	p.AddLead(2, nil)
	p.AddLead(2, nil) // within minTimeout: no second notification
	waitDeliveries(t, p, 1)
	time.Sleep(20 * time.Millisecond) // a second notification would come now
	ds := p.Deliveries()
	if len(ds) != 1 || ds[0].Event != "ONOFFLINEEVENT" ||
		ds[0].Form.Get("auth[refresh_token]") == "" {
		t.Errorf("deliveries = %+v, want one ONOFFLINEEVENT with a refresh token", ds)
	}
	if got := p.OfflineEvents(); len(got) != 2 {
		t.Errorf("offline rows = %v, want 2", got)
	}
}

func TestReorderedDeliveries(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{DeliveryWorkers: 1}, "ONCRMLEADADD")
	in.srv.SetFaults(Faults{Seed: 3, ReorderEvents: 0.5})
	p := in.portal
	for range 30 {
		p.AddLead(1, nil)
	}
	ds := waitDeliveries(t, p, 30)
	swapped := 0
	seen := map[string]bool{}
	for i, d := range ds {
		id := d.Form.Get("data[FIELDS][ID]")
		seen[id] = true
		if i > 0 {
			prev, _ := strconv.Atoi(ds[i-1].Form.Get("data[FIELDS][ID]"))
			if cur, _ := strconv.Atoi(id); cur < prev {
				swapped++
			}
		}
	}
	if swapped == 0 {
		t.Errorf("no delivery arrived out of order")
	}
	if len(seen) != 30 {
		t.Errorf("%d distinct leads delivered, want all 30 exactly once", len(seen))
	}
}

func TestDeliveryLogKeepsTheLatest(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{DeliveryWorkers: 1, DeliveryLogSize: 4}, "ONCRMLEADADD")
	for range 10 {
		in.portal.AddLead(1, nil)
	}
	ds := waitDeliveries(t, in.portal, 10)
	if len(ds) > 4 {
		t.Errorf("kept %d deliveries, want at most 4", len(ds))
	}
	if last := ds[len(ds)-1].Form.Get("data[FIELDS][ID]"); last != "10" {
		t.Errorf("latest kept delivery is lead %s, want 10", last)
	}
}

func TestFailedDeliveryIsNotRetried(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	var calls atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	p := s.NewPortal(PortalOptions{})
	p.RegisterApp(App{APIOnly: true})
	tok := p.Tokens(1)
	postJSON(t, p.ClientEndpoint(), "event.bind", tok.AccessToken,
		map[string]any{"event": "ONCRMLEADADD", "handler": failing.URL + "/events"})
	p.AddLead(1, nil)
	ds := waitDeliveries(t, p, 1)
	time.Sleep(50 * time.Millisecond) // a retry would come now
	if ds[0].Status != 500 || ds[0].Err == "" {
		t.Errorf("delivery = %+v, want status 500 with an error", ds[0])
	}
	if n := calls.Load(); n != 1 || len(p.Deliveries()) != 1 {
		t.Errorf("handler called %d times, %d deliveries; want exactly one", n,
			len(p.Deliveries()))
	}
}

func TestEventTest(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONAPPTEST")
	a := postJSON(t, in.portal.ClientEndpoint(), "event.test", in.tok.AccessToken,
		map[string]any{"any": "thing"})
	if a.Body["result"] != true {
		t.Fatalf("event.test = %s", a.Raw)
	}
	d := waitDeliveries(t, in.portal, 1)[0]
	if d.Event != "ONAPPTEST" || d.Form.Get("data[QUERY][any]") != "thing" {
		t.Errorf("ONAPPTEST = %s", d.Body)
	}
	names := postJSON(t, in.portal.ClientEndpoint(), "events", in.tok.AccessToken, nil)
	if !strings.Contains(names.Raw, `"ONCRMLEADADD"`) {
		t.Errorf("events = %s", names.Raw)
	}
}
