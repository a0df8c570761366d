package bitrixtest

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestUserGetFiltersAndPaging(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	users := []User{{ID: 1, Name: "Admin", Admin: true}}
	for i := 2; i <= 60; i++ {
		users = append(users, User{ID: i, Name: "U" + strconv.Itoa(i), Department: 2 + i%2,
			Dismissed: i%10 == 0})
	}
	p := s.NewPortal(PortalOptions{Users: users})
	tok := p.Tokens(1)
	tests := []struct {
		name      string
		params    map[string]any
		wantRows  int
		wantTotal float64
		wantNext  any
	}{
		{"all, first page", nil, 50, 60, float64(50)},
		{"second page", map[string]any{"start": 50}, 10, 60, nil},
		{"active only", map[string]any{"FILTER": map[string]any{"ACTIVE": true}}, 50, 54,
			float64(50)},
		{"department at top level", map[string]any{"UF_DEPARTMENT": 3}, 29, 29, nil},
		{"by ID", map[string]any{"filter": map[string]any{"ID": 7}}, 1, 1, nil},
		{"active in department", map[string]any{"filter": map[string]any{"ACTIVE": "Y",
			"UF_DEPARTMENT": 2}}, 24, 24, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, p.ClientEndpoint(), "user.get", tok.AccessToken, tt.params)
			rows, _ := a.Body["result"].([]any)
			if len(rows) != tt.wantRows || a.Body["total"] != tt.wantTotal ||
				a.Body["next"] != tt.wantNext {
				t.Errorf("rows %d total %v next %v, want %d %v %v", len(rows), a.Body["total"],
					a.Body["next"], tt.wantRows, tt.wantTotal, tt.wantNext)
			}
		})
	}
	a := postJSON(t, p.ClientEndpoint(), "user.get", tok.AccessToken,
		map[string]any{"ID": 10})
	row := a.Body["result"].([]any)[0].(map[string]any)
	if row["ID"] != "10" || row["ACTIVE"] != false {
		t.Errorf("user 10 = %v, want ID \"10\" and ACTIVE false", row)
	}
	if deps, _ := json.Marshal(row["UF_DEPARTMENT"]); string(deps) != "[2]" {
		t.Errorf("UF_DEPARTMENT = %s, want [2]", deps)
	}
}

func TestUserMethods(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	back := time.Now().Add(48 * time.Hour)
	p := s.NewPortal(PortalOptions{
		Departments: []Department{{ID: 2, Name: "Sales", Head: 2}},
		Users: []User{{ID: 1, Name: "Anna", Admin: true},
			{ID: 2, Name: "Boris", Department: 2, Timeman: "OPENED"},
			{ID: 3, Name: "Clara", Department: 2, AbsentUntil: back, Timeman: "PAUSED"}},
	})
	admin, rep := p.Tokens(1), p.Tokens(2)
	ep := p.ClientEndpoint()
	call := func(tok Token, method string, params map[string]any) answer {
		t.Helper()
		a := postJSON(t, ep, method, tok.AccessToken, params)
		if a.Status != 200 {
			t.Fatalf("%s = %d %s", method, a.Status, a.Raw)
		}
		return a
	}
	if a := call(rep, "user.admin", nil); a.Body["result"] != false {
		t.Errorf("user.admin for a rep = %v", a.Body["result"])
	}
	prof := call(admin, "profile", nil).Body["result"].(map[string]any)
	if prof["ID"] != "1" || prof["ADMIN"] != true || prof["NAME"] != "Anna" {
		t.Errorf("profile = %v", prof)
	}
	cur := call(rep, "user.current", nil).Body["result"].(map[string]any)
	if cur["ID"] != "2" || cur["NAME"] != "Boris" {
		t.Errorf("user.current = %v", cur)
	}
	deps := call(admin, "department.get", map[string]any{"ID": 2}).Body
	dep := deps["result"].([]any)[0].(map[string]any)
	if dep["NAME"] != "Sales" || dep["PARENT"] != "1" || dep["UF_HEAD"] != "2" ||
		deps["total"] != float64(1) {
		t.Errorf("department.get = %v", deps)
	}
	im := call(admin, "im.user.list.get", map[string]any{"ID": []int{2, 3}}).Body["result"]
	byID := im.(map[string]any)
	if byID["2"].(map[string]any)["absent"] != false {
		t.Errorf("absent of a present user = %v", byID["2"])
	}
	if absent, _ := byID["3"].(map[string]any)["absent"].(string); absent == "" {
		t.Errorf("absent of an absent user = %v", byID["3"])
	}
	arr := call(admin, "im.user.list.get", map[string]any{"ID": []int{2},
		"RESULT_TYPE": "array"}).Body["result"].([]any)
	if len(arr) != 1 {
		t.Errorf("RESULT_TYPE=array = %v", arr)
	}
	for _, tt := range []struct {
		user int
		want string
	}{{2, "OPENED"}, {3, "PAUSED"}, {1, "CLOSED"}} {
		st := call(admin, "timeman.status", map[string]any{"USER_ID": tt.user})
		if got := st.Body["result"].(map[string]any)["STATUS"]; got != tt.want {
			t.Errorf("timeman.status of %d = %v, want %s", tt.user, got, tt.want)
		}
	}
	missing := postJSON(t, ep, "timeman.status", admin.AccessToken, map[string]any{"USER_ID": 99})
	if missing.Status != 400 || missing.Body["error_description"] != "User not found" {
		t.Errorf("timeman.status of an unknown user = %d %s", missing.Status, missing.Raw)
	}
}

func TestAppOptions(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep := in.portal.ClientEndpoint()
	rep := in.portal.Tokens(2)
	denied := postJSON(t, ep, "app.option.set", rep.AccessToken,
		map[string]any{"options": map[string]any{"k": "v"}})
	if denied.Status == 200 || denied.code() == "" {
		t.Errorf("app.option.set by a rep = %d %s, want an error", denied.Status, denied.Raw)
	}
	set := postJSON(t, ep, "app.option.set", in.tok.AccessToken,
		map[string]any{"options": map[string]any{"version": "3", "team": []int{1, 2}}})
	if set.Body["result"] != true {
		t.Fatalf("app.option.set = %s", set.Raw)
	}
	one := postJSON(t, ep, "app.option.get", rep.AccessToken, map[string]any{"option": "version"})
	if one.Body["result"] != "3" {
		t.Errorf("app.option.get version = %v", one.Body["result"])
	}
	none := postJSON(t, ep, "app.option.get", rep.AccessToken, map[string]any{"option": "nope"})
	if v, ok := none.Body["result"]; !ok || v != nil {
		t.Errorf("missing option = %s, want null", none.Raw)
	}
	all := postJSON(t, ep, "app.option.get", rep.AccessToken, nil)
	if len(all.Body["result"].(map[string]any)) != 2 {
		t.Errorf("all options = %s", all.Raw)
	}
}

func TestPlacements(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep, tok := in.portal.ClientEndpoint(), in.tok.AccessToken
	handler := in.rc.srv.URL + "/placement/lead"
	rep := in.portal.Tokens(2)
	tests := []struct {
		name     string
		token    string
		params   map[string]any
		wantCode string
	}{
		{"bind", tok, map[string]any{"PLACEMENT": "CRM_LEAD_DETAIL_TAB", "HANDLER": handler,
			"TITLE": "Routing"}, ""},
		{"duplicate", tok, map[string]any{"PLACEMENT": "CRM_LEAD_DETAIL_TAB",
			"HANDLER": handler}, "ERROR_CORE"},
		{"default", tok, map[string]any{"PLACEMENT": "DEFAULT", "HANDLER": handler},
			"ERROR_ARGUMENT"},
		{"unknown", tok, map[string]any{"PLACEMENT": "NOWHERE", "HANDLER": handler},
			"ERROR_PLACEMENT_NOT_FOUND"},
		{"not admin", rep.AccessToken, map[string]any{"PLACEMENT": "CRM_LEAD_LIST_MENU",
			"HANDLER": handler}, "ACCESS_DENIED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, ep, "placement.bind", tt.token, tt.params)
			if a.code() != tt.wantCode {
				t.Errorf("placement.bind = %d %s, want %q", a.Status, a.Raw, tt.wantCode)
			}
		})
	}
	got := postJSON(t, ep, "placement.get", tok, nil).Body["result"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["handler"] != handler {
		t.Errorf("placement.get = %v", got)
	}
	if u, _ := in.portal.PageURL("CRM_LEAD_DETAIL_TAB"); u != handler {
		t.Errorf("PageURL = %q, want %q", u, handler)
	}
	un := postJSON(t, ep, "placement.unbind", tok,
		map[string]any{"PLACEMENT": "CRM_LEAD_DETAIL_TAB"})
	if un.Body["result"].(map[string]any)["count"] != float64(1) {
		t.Errorf("placement.unbind = %s", un.Raw)
	}
}

func TestOpenForm(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	q, body := p.OpenForm(2, "CRM_LEAD_DETAIL_TAB", map[string]any{"ID": 17})
	if q.Get("DOMAIN") != p.Domain() || q.Get("PROTOCOL") != "0" || q.Get("LANG") != "en" ||
		q.Get("APP_SID") == "" {
		t.Errorf("query = %v", q)
	}
	if body.Get("PLACEMENT_OPTIONS") != `{"ID":"17"}` || body.Get("member_id") != p.MemberID() ||
		body.Get("AUTH_EXPIRES") != "3600" || body.Get("status") != "L" ||
		body.Get("APPLICATION_TOKEN") != p.ApplicationToken() ||
		body.Get("SERVER_ENDPOINT") != in.srv.OAuthURL()+"/rest/" {
		t.Errorf("body = %v", body)
	}
	a := postJSON(t, p.ClientEndpoint(), "user.current", body.Get("AUTH_ID"), nil)
	if a.Body["result"].(map[string]any)["ID"] != "2" {
		t.Errorf("AUTH_ID belongs to %v, want user 2", a.Body["result"])
	}
	_, def := p.OpenForm(1, "", nil)
	if def.Get("PLACEMENT") != "DEFAULT" || def.Has("PLACEMENT_OPTIONS") {
		t.Errorf("main page body = %v", def)
	}
}

func TestLegacyFrameForm(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{LegacyFrameForm: true})
	p.RegisterApp(App{HandlerURL: "http://app.example/app"})
	_, body := p.OpenForm(1, "DEFAULT", nil)
	for _, k := range []string{"SERVER_ENDPOINT", "APPLICATION_TOKEN", "APPLICATION_SCOPE"} {
		if body.Has(k) {
			t.Errorf("legacy form carries %s", k)
		}
	}
	if body.Get("AUTH_ID") == "" || body.Get("member_id") != p.MemberID() {
		t.Errorf("legacy form = %v", body)
	}
}
