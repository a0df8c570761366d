package bitrixtest

import (
	"net/http"
	"net/url"
	"testing"
)

func refresh(t *testing.T, s *Server, refreshToken string, get bool) answer {
	t.Helper()
	q := url.Values{
		"grant_type": {"refresh_token"}, "client_id": {s.ClientID()},
		"client_secret": {s.ClientSecret()}, "refresh_token": {refreshToken},
	}
	if get {
		req, _ := http.NewRequest(http.MethodGet, s.OAuthURL()+"/oauth/token/?"+q.Encode(), nil)
		return do(t, req)
	}
	return postForm(t, s.OAuthURL()+"/oauth/token/", q.Encode())
}

func TestRefreshRotatesSingleUseTokens(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{Name: "rotate"})
	first := p.Tokens(1)

	a := refresh(t, s, first.RefreshToken, false)
	if a.Status != 200 {
		t.Fatalf("refresh = %d %s", a.Status, a.Raw)
	}
	want := map[string]any{
		"member_id": p.MemberID(), "domain": s.oauthHost(), "client_endpoint": p.ClientEndpoint(),
		"server_endpoint": s.OAuthURL() + "/rest/", "status": "L", "scope": defaultScope,
		"expires_in": float64(3600), "user_id": float64(1),
	}
	for k, v := range want {
		if a.Body[k] != v {
			t.Errorf("token answer %s = %v, want %v", k, a.Body[k], v)
		}
	}
	for _, k := range []string{"access_token", "refresh_token", "expires"} {
		if a.Body[k] == nil {
			t.Errorf("token answer lacks %s", k)
		}
	}
	if _, ok := a.Body["token_type"]; ok {
		t.Errorf("token answer has token_type, Bitrix24 sends none")
	}
	if a.Body["domain"] == p.Domain() {
		t.Errorf("token answer domain = the portal's; it must name the OAuth server")
	}
	if a.Body["refresh_token"] == first.RefreshToken {
		t.Errorf("refresh token did not rotate")
	}

	again := refresh(t, s, first.RefreshToken, true)
	if again.Status != 400 || again.code() != "invalid_grant" {
		t.Errorf("reused refresh token = %d %q, want 400 invalid_grant", again.Status, again.code())
	}

	next := refresh(t, s, a.Body["refresh_token"].(string), true)
	if next.Status != 200 {
		t.Errorf("refresh with the rotated token (GET) = %d %s", next.Status, next.Raw)
	}
	profile := postJSON(t, p.ClientEndpoint(), "profile", next.Body["access_token"].(string), nil)
	if profile.Status != 200 {
		t.Errorf("profile with refreshed token = %d %s", profile.Status, profile.Raw)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{ClientID: "local.abc.1", ClientSecret: "s3"})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantCode   string
	}{
		{"unknown client", url.Values{"grant_type": {"refresh_token"}, "client_id": {"x"},
			"client_secret": {"s3"}, "refresh_token": {tok.RefreshToken}}, 200, "wrong_client"},
		{"wrong secret", url.Values{"grant_type": {"refresh_token"}, "client_id": {"local.abc.1"},
			"client_secret": {"nope"}, "refresh_token": {tok.RefreshToken}}, 400, "invalid_client"},
		{"no refresh token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {"local.abc.1"}, "client_secret": {"s3"}}, 400, "invalid_request"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"},
			"client_id": {"local.abc.1"}, "client_secret": {"s3"}, "refresh_token": {"zzz"}},
			400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postForm(t, s.OAuthURL()+"/oauth/token/", tt.form.Encode())
			if a.Status != tt.wantStatus || a.code() != tt.wantCode {
				t.Errorf("token = %d %q, want %d %q", a.Status, a.code(), tt.wantStatus,
					tt.wantCode)
			}
		})
	}
}

func TestRevokeOnRefreshKillsOldAccessToken(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{RevokeOnRefresh: true})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	if a := refresh(t, s, tok.RefreshToken, false); a.Status != 200 {
		t.Fatalf("refresh = %d", a.Status)
	}
	a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil)
	if a.Status != 401 || a.code() != "expired_token" {
		t.Errorf("old access token = %d %q, want 401 expired_token", a.Status, a.code())
	}
}

func TestOAuthServerAppInfo(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	a := postJSON(t, in.srv.OAuthURL()+"/rest/", "app.info", in.tok.AccessToken, nil)
	if a.Status != 200 {
		t.Fatalf("app.info = %d %s", a.Status, a.Raw)
	}
	res := a.Body["result"].(map[string]any)
	install := res["install"].(map[string]any)
	if res["client_id"] != in.srv.ClientID() || install["member_id"] != in.portal.MemberID() ||
		install["client_endpoint"] != in.portal.ClientEndpoint() || install["installed"] != true {
		t.Errorf("OAuth app.info = %v", res)
	}
	if res["user_id"] != float64(1) {
		t.Errorf("user_id = %v, want 1", res["user_id"])
	}
	bad := postJSON(t, in.srv.OAuthURL()+"/rest/", "app.info", "nope", nil)
	if bad.Status != 401 || bad.code() != "invalid_token" {
		t.Errorf("app.info with unknown token = %d %q", bad.Status, bad.code())
	}
}

func TestOAuthServerFault(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	s.SetFaults(Faults{Seed: 1, OAuthError5xx: 1})
	if a := refresh(t, s, tok.RefreshToken, false); a.Status != 503 {
		t.Errorf("refresh under the fault = %d, want 503", a.Status)
	}
	s.SetFaults(Faults{})
	if a := refresh(t, s, tok.RefreshToken, false); a.Status != 200 {
		t.Errorf("refresh after the fault = %d %s, want 200: the token was not used up",
			a.Status, a.Raw)
	}
}
