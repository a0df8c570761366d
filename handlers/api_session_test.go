package handlers_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/oauth"
)

// expiredSession issues a session for userID on p that ran out an hour ago, signed
// with the deployment's key as the page open signs it.
func (s *stack) expiredSession(p *bitrixtest.Portal, userID int, admin bool) string {
	s.t.Helper()
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	sessions := oauth.NewStore(s.rdb, oauth.Config{ClientID: s.fake.ClientID(),
		ClientSecret: s.fake.ClientSecret(), OAuthURL: s.fake.OAuthURL(), SessionTTL: time.Hour,
		Now: past}, testLogger(s.t)).Sessions()
	return sessions.Issue(oauth.FrameUser{MemberID: p.MemberID(), UserID: int64(userID),
		Admin: admin, Lang: "en"})
}

// freshAuth is the access token the portal hands the frame of userID, as
// BX24.refreshAuth answers it.
func freshAuth(p *bitrixtest.Portal, userID int) string {
	_, body := p.OpenForm(userID, "DEFAULT", nil)
	return body.Get("AUTH_ID")
}

func TestSessionRenewal(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	a, b := s.newPortal("en"), s.newPortal("en")
	s.install(a)
	s.install(b)
	expired := s.expiredSession(a, anna.ID, true)
	if code := s.call(expired, "GET", "/api/settings", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/settings with an expired session = %d, want 401", code)
	}

	tests := []struct {
		name     string
		session  string
		authID   string
		memberID string
		want     int
	}{
		{name: "fresh auth of the same person", session: expired, authID: freshAuth(a, anna.ID),
			memberID: a.MemberID(), want: http.StatusOK},
		{name: "forged auth", session: expired, authID: "0123456789abcdef0123456789abcdef",
			memberID: a.MemberID(), want: http.StatusUnauthorized},
		{name: "another portal's auth for this portal", session: expired,
			authID: freshAuth(b, anna.ID), memberID: a.MemberID(), want: http.StatusUnauthorized},
		{name: "another portal's auth for that portal", session: expired,
			authID: freshAuth(b, anna.ID), memberID: b.MemberID(), want: http.StatusUnauthorized},
		{name: "another person's auth", session: expired, authID: freshAuth(a, boris.ID),
			memberID: a.MemberID(), want: http.StatusUnauthorized},
		{name: "forged session", session: expired[:len(expired)-3] + "AAA",
			authID: freshAuth(a, anna.ID), memberID: a.MemberID(), want: http.StatusUnauthorized},
		{name: "no session", authID: freshAuth(a, anna.ID), memberID: a.MemberID(),
			want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				Token string `json:"token"`
			}
			body := map[string]string{"auth_id": tt.authID, "member_id": tt.memberID}
			code := s.call(tt.session, "POST", "/api/session", body, &got)
			if code != tt.want {
				t.Fatalf("POST /api/session = %d, want %d", code, tt.want)
			}
			if tt.want != http.StatusOK {
				if got.Token != "" {
					t.Errorf("refused renewal carries a token")
				}
				return
			}
			var settings map[string]any
			if code := s.call(got.Token, "GET", "/api/settings", nil, &settings); code != 200 {
				t.Errorf("GET /api/settings with the renewed session = %d, want 200", code)
			}
			if code := s.call(got.Token, "PUT", "/api/settings",
				map[string]any{"settings": salesTeam()}, nil); code != 200 {
				t.Errorf("PUT /api/settings with the renewed administrator's session = %d", code)
			}
		})
	}
}
