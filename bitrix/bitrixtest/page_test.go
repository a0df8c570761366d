package bitrixtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestPortalPage(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.DemoPortal()
	rc := newReceiver(t)
	p.RegisterApp(App{HandlerURL: rc.srv.URL + "/app"})
	tok := p.Tokens(1)
	postJSON(t, p.ClientEndpoint(), "event.bind", tok.AccessToken,
		map[string]any{"event": "ONCRMLEADADD", "handler": rc.url()})
	if err := p.FinishInstall(1); err != nil {
		t.Fatal(err)
	}

	form := url.Values{"title": {"Walk-in"}, "phone": {"+49 30 1234567"}, "by": {"2"},
		"source": {"CALL"}}
	a := postForm(t, s.URL()+"/portal/demo/ui/lead", form.Encode())
	if a.Status != http.StatusSeeOther {
		t.Fatalf("add lead = %d %s", a.Status, a.Raw)
	}
	leads := p.Leads()
	if len(leads) != 1 || leads[0]["TITLE"] != "Walk-in" || leads[0]["CREATED_BY_ID"] != "2" {
		t.Fatalf("leads = %v", leads)
	}
	waitDeliveries(t, p, 1)

	bad := postForm(t, s.URL()+"/portal/demo/ui/user", "name=")
	if bad.Status != http.StatusBadRequest {
		t.Errorf("user without a name = %d, want 400", bad.Status)
	}

	page := do(t, mustGet(t, s.URL()+"/portal/demo/"))
	for _, want := range []string{"Walk-in", "Boris Petrov", "ONCRMLEADADD", p.MemberID()} {
		if !strings.Contains(page.Raw, want) {
			t.Errorf("portal page lacks %q", want)
		}
	}
	index := do(t, mustGet(t, s.URL()+"/"))
	if index.Status != 200 || !strings.Contains(index.Raw, "/portal/demo/") {
		t.Errorf("index = %d, want a link to the demo portal", index.Status)
	}
}

func mustGet(t *testing.T, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTokensPage(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.DemoPortal()
	a := postForm(t, s.URL()+"/portal/demo/ui/tokens", "user=2")
	if a.Status != 200 {
		t.Fatalf("tokens page = %d %s", a.Status, a.Raw)
	}
	start := strings.Index(a.Raw, "user.current?auth=")
	if start < 0 {
		t.Fatalf("tokens page shows no token: %s", a.Raw)
	}
	tok := a.Raw[start+len("user.current?auth="):]
	tok = tok[:strings.IndexByte(tok, '\'')]
	cur := postJSON(t, p.ClientEndpoint(), "user.current", tok, nil)
	if cur.Status != 200 || cur.Body["result"].(map[string]any)["ID"] != "2" {
		t.Errorf("shown token calls as %s", cur.Raw)
	}
	if bad := postForm(t, s.URL()+"/portal/demo/ui/tokens", "user=5"); bad.Status != 400 {
		t.Errorf("tokens for a dismissed user = %d, want 400", bad.Status)
	}
}
