package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
)

// TestTokenResponseShapes checks how answers of Bitrix24's token endpoint that the
// fake server does not produce are read: an absolute expiry without expires_in,
// and an error body that comes with HTTP 200. The token endpoint here is a plain
// httptest server that answers one fixed body and records the request.
func TestTokenResponseShapes(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	tests := []struct {
		name       string
		status     int
		body       string
		wantErr    error
		wantStatus string
		wantExpiry time.Time
	}{
		{
			name:       "absolute expiry only",
			status:     http.StatusOK,
			body:       `{"access_token":"a2","refresh_token":"r2","expires":` + itoa(expires.Unix()) + `}`,
			wantStatus: oauth.StatusActive,
			wantExpiry: expires,
		},
		{
			name:       "invalid_grant with HTTP 200",
			status:     http.StatusOK,
			body:       `{"error":"invalid_grant","error_description":"Invalid refresh token"}`,
			wantErr:    oauth.ErrInactive,
			wantStatus: oauth.StatusBlocked,
		},
		{
			name:       "wrong_client with HTTP 200 leaves the portal alone",
			status:     http.StatusOK,
			body:       `{"error":"wrong_client","error_description":"Wrong client"}`,
			wantErr:    errAny,
			wantStatus: oauth.StatusActive,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got struct{ path, grant, clientID, refresh string }
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				got.path, got.grant = r.URL.Path, r.PostForm.Get("grant_type")
				got.clientID, got.refresh = r.PostForm.Get("client_id"), r.PostForm.Get("refresh_token")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			rdb := redistest.Start(t).Client(t)
			store := oauth.NewStore(rdb, oauth.Config{ClientID: "app.1", ClientSecret: "s", OAuthURL: srv.URL}, discard())
			ctx := context.Background()
			member := "0123456789abcdef0123456789abcdef"
			_, err := store.SaveInstall(ctx, oauth.Install{MemberID: member, Domain: "acme.bitrix24.com",
				ClientEndpoint: "https://acme.bitrix24.com/rest/", ApplicationToken: "t", Installed: true,
				Tokens: oauth.Tokens{AccessToken: "a1", RefreshToken: "r1"}})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := store.Auth(member).Refresh(ctx, bitrix.Credentials{AccessToken: "a1"})
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Refresh() = %v", err)
			case tc.wantErr == errAny && err == nil:
				t.Fatalf("Refresh() = %+v, want an error", creds)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("Refresh() = %v, want %v", err, tc.wantErr)
			}
			if got.path != "/oauth/token/" || got.grant != "refresh_token" || got.clientID != "app.1" || got.refresh != "r1" {
				t.Errorf("token request = %+v, want a refresh_token grant at /oauth/token/ with the body credentials", got)
			}
			p, _ := store.Portal(ctx, member)
			if p.Status != tc.wantStatus {
				t.Errorf("status = %s, want %s", p.Status, tc.wantStatus)
			}
			if !tc.wantExpiry.IsZero() {
				tok, _ := store.Tokens(ctx, member)
				if !tok.Expiry.Equal(tc.wantExpiry) || tok.RefreshToken != "r2" {
					t.Errorf("stored pair = %+v, want r2 expiring %v", tok, tc.wantExpiry)
				}
			}
		})
	}
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
