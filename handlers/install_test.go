package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestInstallPage(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	pg := openInstall(t, s.app.URL, p, anna.ID)
	if pg.status != http.StatusOK {
		t.Fatalf("install page = %d: %.500s", pg.status, pg.body)
	}
	csp := pg.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'self' "+s.fake.URL()) {
		t.Errorf("CSP = %q, want frame-ancestors naming the portal %s", csp, s.fake.URL())
	}
	if xfo := pg.header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options = %q, want none", xfo)
	}
	for _, want := range []string{"installFinish", "ONCRMLEADADD → " + s.app.URL + "/events",
		"CRM_LEAD_DETAIL_TAB → " + s.app.URL + "/placement/lead-tab", `data-state="pending"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("install page lacks %q", want)
		}
	}
	for _, secret := range []string{s.fake.ClientSecret(), p.ApplicationToken()} {
		if strings.Contains(pg.body, secret) {
			t.Errorf("install page shows a secret")
		}
	}
	rec, err := s.store.Portal(context.Background(), p.MemberID())
	if err != nil || rec.Status != oauth.StatusNew {
		t.Fatalf("portal after the install page = %+v, %v; want new", rec, err)
	}
	events, places := p.Bindings()
	if len(events) != 6 || len(places) != 1 {
		t.Errorf("bindings after the install page: %d events, %d placements; want 6 and 1", len(events), len(places))
	}
}

func TestInstallPageRefusals(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	victim := s.newPortal("en")
	other := s.newPortal("ru")
	tests := []struct {
		name       string
		open       func() pageReply
		wantStatus int
		wantText   string
	}{
		{
			name:       "employee",
			open:       func() pageReply { return openInstall(t, s.app.URL, victim, boris.ID) },
			wantStatus: http.StatusForbidden,
			wantText:   "Only a portal administrator can install LeadRouter.",
		},
		{
			name: "another portal's token",
			open: func() pageReply {
				q, f := other.OpenForm(anna.ID, "DEFAULT", nil)
				q.Set("LANG", "en")
				f.Set("member_id", victim.MemberID())
				return postPage(t, s.app.URL+"/install?"+q.Encode(), f)
			},
			wantStatus: http.StatusForbidden,
			wantText:   "Bitrix24 did not confirm this install request.",
		},
		{
			name: "empty request",
			open: func() pageReply {
				return postPage(t, s.app.URL+"/install", nil)
			},
			wantStatus: http.StatusBadRequest,
			wantText:   "The install request from Bitrix24 is incomplete.",
		},
		{
			name: "in Russian",
			open: func() pageReply {
				q, f := other.OpenForm(boris.ID, "DEFAULT", nil)
				return postPage(t, s.app.URL+"/install?"+q.Encode(), f)
			},
			wantStatus: http.StatusForbidden,
			wantText:   "Установить LeadRouter может только администратор портала.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pg := tc.open()
			if pg.status != tc.wantStatus || !strings.Contains(pg.body, tc.wantText) {
				t.Errorf("install page = %d %.300q; want %d with %q", pg.status, pg.body, tc.wantStatus, tc.wantText)
			}
			if strings.Contains(pg.body, "installFinish") {
				t.Errorf("a refused install page still calls installFinish")
			}
		})
	}
	if _, err := s.store.Portal(context.Background(), victim.MemberID()); !errors.Is(err, oauth.ErrUnknownPortal) {
		t.Errorf("refused installs stored the portal: %v", err)
	}
}

// openInstall POSTs the install page as the portal's hidden form does.
func openInstall(t *testing.T, app string, p *bitrixtest.Portal, userID int) pageReply {
	t.Helper()
	q, f := p.OpenForm(userID, "DEFAULT", nil)
	return postPage(t, app+"/install?"+q.Encode(), f)
}

func TestInstallPageByGet(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	q, f := p.OpenForm(anna.ID, "DEFAULT", nil)
	for k, v := range f {
		q[k] = v
	}
	resp, err := http.Get(s.app.URL + "/install?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /install = %d, want 200", resp.StatusCode)
	}
}
