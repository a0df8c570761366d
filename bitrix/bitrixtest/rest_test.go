package bitrixtest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	stale := p.Tokens(2)
	p.ExpireAccessTokens()
	fresh := p.Tokens(2)
	other := in.srv.NewPortal(PortalOptions{Name: "other"}).Tokens(1)
	tests := []struct {
		name       string
		token      string
		wantStatus int
		wantCode   string
	}{
		{"missing", "", 401, "NO_AUTH_FOUND"},
		{"unknown", "deadbeef", 401, "invalid_token"},
		{"expired", stale.AccessToken, 401, "expired_token"},
		{"another portal's", other.AccessToken, 401, "invalid_token"},
		{"valid", fresh.AccessToken, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postJSON(t, p.ClientEndpoint(), "user.current", tt.token, nil)
			if a.Status != tt.wantStatus || a.code() != tt.wantCode {
				t.Errorf("user.current = %d %q, want %d %q", a.Status, a.code(),
					tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode != "" && a.Body["error_description"] == nil {
				t.Errorf("error answer lacks error_description: %s", a.Raw)
			}
		})
	}
}

func TestAuthLocations(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep := in.portal.ClientEndpoint()
	tok := in.tok.AccessToken
	bearer, _ := http.NewRequest(http.MethodPost, ep+"user.admin", nil)
	bearer.Header.Set("Authorization", "Bearer "+tok)
	query, _ := http.NewRequest(http.MethodGet, ep+"USER.ADMIN.json?access_token="+tok, nil)
	tests := []struct {
		name string
		req  *http.Request
	}{
		{"bearer header", bearer},
		{"access_token in query, upper-case method, .json", query},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.req)
			if a.Status != 200 || a.Body["result"] != true {
				t.Errorf("user.admin = %d %s, want 200 true", a.Status, a.Raw)
			}
		})
	}
	form := postForm(t, ep+"user.admin", "auth="+tok)
	if form.Status != 200 {
		t.Errorf("auth in form = %d %s", form.Status, form.Raw)
	}
}

func TestPortalStateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		break_     func(p *Portal)
		method     string
		wantStatus int
		wantCode   string
	}{
		{"deleted", (*Portal).Delete, "profile", 500, "PORTAL_DELETED"},
		{"overload", func(p *Portal) { p.SetOverload(true) }, "profile", 503, "OVERLOAD_LIMIT"},
		{"payment", func(p *Portal) { p.SetPaymentRequired(true) }, "profile", 401,
			"PAYMENT_REQUIRED"},
		{"access denied", func(p *Portal) { p.SetAccessDenied(true) }, "profile", 403,
			"ACCESS_DENIED"},
		{"unknown method", func(*Portal) {}, "crm.nothing.get", 404, "ERROR_METHOD_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := setup(t, Options{})
			tt.break_(in.portal)
			a := postJSON(t, in.portal.ClientEndpoint(), tt.method, in.tok.AccessToken, nil)
			if a.Status != tt.wantStatus || a.code() != tt.wantCode {
				t.Errorf("%s = %d %q, want %d %q", tt.method, a.Status, a.code(),
					tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestInsufficientScope(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	p.RegisterApp(App{APIOnly: true, Scope: "crm"})
	tok := p.Tokens(1)
	a := postJSON(t, p.ClientEndpoint(), "im.notify.system.add", tok.AccessToken,
		map[string]any{"USER_ID": 1, "MESSAGE": "hi"})
	if a.Status != 401 || a.code() != "insufficient_scope" {
		t.Errorf("im.notify.system.add without im scope = %d %q", a.Status, a.code())
	}
}

func TestLeakyBucket(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Rate: 0.001, Burst: 3})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	var codes []string
	for range 5 {
		a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil)
		codes = append(codes, a.code())
		if a.code() == "QUERY_LIMIT_EXCEEDED" && a.Status != 503 {
			t.Errorf("QUERY_LIMIT_EXCEEDED status = %d, want 503", a.Status)
		}
	}
	want := []string{"", "", "", "QUERY_LIMIT_EXCEEDED", "QUERY_LIMIT_EXCEEDED"}
	if strings.Join(codes, ",") != strings.Join(want, ",") {
		t.Errorf("codes = %v, want %v", codes, want)
	}
}

func TestLeakyBucketDrains(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Rate: 50, Burst: 1})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil)
	time.Sleep(40 * time.Millisecond) // two requests' worth at 50 a second
	if a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil); a.Status != 200 {
		t.Errorf("after draining = %d %q, want 200", a.Status, a.code())
	}
}

func TestOperatingLimit(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	p.AddOperatingTime("crm.lead.list", 481*time.Second)
	a := postJSON(t, p.ClientEndpoint(), "crm.lead.list", in.tok.AccessToken, nil)
	if a.Status != 429 || a.code() != "OPERATION_TIME_LIMIT" {
		t.Fatalf("crm.lead.list over budget = %d %q", a.Status, a.code())
	}
	tm, _ := a.Body["time"].(map[string]any)
	reset, _ := tm["operating_reset_at"].(float64)
	if reset <= float64(time.Now().Unix()) {
		t.Errorf("operating_reset_at = %v, want a future unix time", tm["operating_reset_at"])
	}
	other := postJSON(t, p.ClientEndpoint(), "crm.lead.fields", in.tok.AccessToken, nil)
	if other.Status != 200 {
		t.Errorf("another method = %d %q, want 200", other.Status, other.code())
	}
	if _, ok := other.Body["time"].(map[string]any)["operating"]; !ok {
		t.Errorf("time lacks operating: %v", other.Body["time"])
	}
}

func TestRenameAnswers302(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	old := in.portal.ClientEndpoint()
	in.portal.Rename("acme-new")
	a := postJSON(t, old, "profile", in.tok.AccessToken, nil)
	if a.Status != http.StatusFound {
		t.Fatalf("old address = %d, want 302", a.Status)
	}
	loc := a.Header.Get("Location")
	if loc != in.portal.ClientEndpoint()+"profile" {
		t.Errorf("Location = %q, want %q", loc, in.portal.ClientEndpoint()+"profile")
	}
	b := postJSON(t, in.portal.ClientEndpoint(), "profile", in.tok.AccessToken, nil)
	if b.Status != 200 {
		t.Errorf("new address = %d", b.Status)
	}
}

func TestFormBracketParams(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep := in.portal.ClientEndpoint()
	form := url.Values{
		"auth":                         {in.tok.AccessToken},
		"fields[TITLE]":                {"From a form"},
		"fields[PHONE][0][VALUE]":      {"+1 555 0100"},
		"fields[PHONE][0][VALUE_TYPE]": {"WORK"},
		"fields[ASSIGNED_BY_ID]":       {"2"},
	}
	a := postForm(t, ep+"crm.lead.add", form.Encode())
	if a.Status != 200 {
		t.Fatalf("crm.lead.add = %d %s", a.Status, a.Raw)
	}
	id := int(a.Body["result"].(float64))
	lead, _ := in.portal.Lead(id)
	phones, _ := lead["PHONE"].([]any)
	if lead["TITLE"] != "From a form" || lead["ASSIGNED_BY_ID"] != "2" || len(phones) != 1 {
		t.Errorf("lead = %v", lead)
	}
}

func TestDismissedUserToken(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	tok := in.portal.Tokens(2)
	u, _ := in.portal.User(2)
	u.Dismissed = true
	in.portal.UpdateUser(u)
	a := postJSON(t, in.portal.ClientEndpoint(), "profile", tok.AccessToken, nil)
	if a.Status != 401 || a.code() != "authorization_error" {
		t.Errorf("dismissed user's token = %d %q, want 401 authorization_error", a.Status, a.code())
	}
}

func TestCORSForFramePages(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	pre, _ := http.NewRequest(http.MethodOptions, in.portal.ClientEndpoint()+"profile", nil)
	pre.Header.Set("Origin", "http://127.0.0.1:1")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-request-id")
	a := do(t, pre)
	if a.Status != http.StatusNoContent || a.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(a.Header.Get("Access-Control-Allow-Headers"), "X-Request-ID") {
		t.Errorf("preflight = %d %v", a.Status, a.Header)
	}
	if n := in.portal.RequestCount(); n != 0 {
		t.Errorf("the preflight counted as %d REST requests", n)
	}
	call := postJSON(t, in.portal.ClientEndpoint(), "profile", in.tok.AccessToken, nil)
	if call.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("REST answer lacks Access-Control-Allow-Origin")
	}
}

func TestBatchCountsOnceInTheBucket(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Rate: 0.001, Burst: 2})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	cmds := map[string]any{}
	for i := range 10 {
		cmds["c"+strconv.Itoa(i)] = "profile"
	}
	if a := postJSON(t, p.ClientEndpoint(), "batch", tok.AccessToken,
		map[string]any{"cmd": cmds}); a.Status != 200 {
		t.Fatalf("batch = %d %q", a.Status, a.code())
	}
	if a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil); a.Status != 200 {
		t.Errorf("second request = %d %q, want 200: the batch of 10 counts once", a.Status,
			a.code())
	}
	if a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil); a.Status != 503 {
		t.Errorf("third request = %d, want 503 QUERY_LIMIT_EXCEEDED", a.Status)
	}
}
