package lifecycle_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/oauth"
)

// TestUpdateBringsLostApplicationToken: the install page carried no application
// token and ONAPPINSTALL was lost, so LeadRouter holds none. The portal's
// ONAPPUPDATE carries its token, which differs from the stored one; app.info
// confirms the event's access token, and the token and the event's pair are taken.
func TestUpdateBringsLostApplicationToken(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{DropEvents: 1})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	q, f := p.OpenForm(1, "DEFAULT", nil)
	f.Del("APPLICATION_TOKEN")
	if _, err := e.lc.Install(ctx, q, f); err != nil {
		t.Fatalf("Install() = %v", err)
	}
	finish(t, p)
	waitDeliveries(t, p, 1)
	sweepFinishes(t, e)
	if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken()); err == nil {
		t.Fatalf("the portal's token was accepted before the update brought it")
	}
	e.srv.SetFaults(bitrixtest.Faults{})

	p.UpdateApp("2")
	got := e.waitFor(t, p.MemberID(), "updated", func(r *oauth.Portal) bool {
		return r.Version == "2" && r.BoundVersion == "2"
	})
	if got.ApplicationToken != p.ApplicationToken() || got.LastError != "" {
		t.Errorf("after update: token taken %v, last error %q; want the portal's token, no error",
			got.ApplicationToken == p.ApplicationToken(), got.LastError)
	}
	if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken()); err != nil {
		t.Errorf("CheckApplicationToken(the portal's token) after update = %v", err)
	}
	form := updateDelivery(t, p).Form
	checkPair(t, e, p, form.Get("auth[access_token]"), form.Get("auth[refresh_token]"))
	e.checkBindings(t, p)
}

// TestUpdateWithNewApplicationToken: an ONAPPUPDATE whose application token is not
// the stored one is taken only when app.info confirms its access token for this
// portal and this application, and the token is an administrator's; then the old
// token opens nothing.
func TestUpdateWithNewApplicationToken(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ctx := context.Background()
	other := e.newPortal(t, "other")
	tests := []struct {
		name string
		// auth returns the event's access and refresh token.
		auth     func(p *bitrixtest.Portal) bitrixtest.Token
		accepted bool
	}{
		{
			name:     "confirmed by app.info",
			auth:     func(p *bitrixtest.Portal) bitrixtest.Token { return p.Tokens(1) },
			accepted: true,
		},
		{
			// Any user who opens the application holds a token app.info confirms.
			name:     "a user who is not an administrator",
			auth:     func(p *bitrixtest.Portal) bitrixtest.Token { return p.Tokens(2) },
			accepted: false,
		},
		{
			name:     "another portal's access token",
			auth:     func(*bitrixtest.Portal) bitrixtest.Token { return other.Tokens(1) },
			accepted: false,
		},
		{
			name: "an unknown access token",
			auth: func(*bitrixtest.Portal) bitrixtest.Token {
				return bitrixtest.Token{AccessToken: "0123456789abcdef", RefreshToken: "fedcba9876543210"}
			},
			accepted: false,
		},
		{
			name:     "no access token",
			auth:     func(*bitrixtest.Portal) bitrixtest.Token { return bitrixtest.Token{} },
			accepted: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := e.newPortal(t, "acme")
			e.install(t, p)
			finish(t, p)
			before := e.waitStatus(t, p.MemberID(), oauth.StatusActive)
			oldToken := p.ApplicationToken()
			beforePair, _ := e.store.Tokens(ctx, p.MemberID())

			tok := tc.auth(p)
			const newToken = "a5f0c1d2e3b4a5f6c7d8e9f0a1b2c3d4"
			ev := appEvent(bitrix.EventAppUpdate, p.MemberID(), newToken, url.Values{
				"data[VERSION]":         {"2"},
				"auth[access_token]":    {tok.AccessToken},
				"auth[refresh_token]":   {tok.RefreshToken},
				"auth[expires_in]":      {"3600"},
				"auth[user_id]":         {"1"},
				"auth[domain]":          {p.Domain()},
				"auth[server_endpoint]": {e.srv.OAuthURL() + "/rest/"},
			})
			err := e.lc.HandleAppEvent(ctx, ev)
			if !tc.accepted {
				if !errors.Is(err, oauth.ErrForbidden) {
					t.Fatalf("HandleAppEvent(ONAPPUPDATE) = %v, want ErrForbidden", err)
				}
				got, _ := e.store.Portal(ctx, p.MemberID())
				pair, _ := e.store.Tokens(ctx, p.MemberID())
				if got.Version != before.Version || got.ApplicationToken != oldToken ||
					pair.RefreshToken != beforePair.RefreshToken {
					t.Errorf("refused update changed the record: version %s, token kept %v, pair kept %v",
						got.Version, got.ApplicationToken == oldToken,
						pair.RefreshToken == beforePair.RefreshToken)
				}
				if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), oldToken); err != nil {
					t.Errorf("CheckApplicationToken(old token) after a refused update = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleAppEvent(ONAPPUPDATE) = %v, want it accepted", err)
			}
			got := e.waitFor(t, p.MemberID(), "updated", func(r *oauth.Portal) bool {
				return r.Version == "2" && r.BoundVersion == "2"
			})
			if got.ApplicationToken != newToken {
				t.Errorf("stored application token is not the update's")
			}
			_, err = e.store.CheckApplicationToken(ctx, p.MemberID(), oldToken)
			if !errors.Is(err, oauth.ErrForbidden) {
				t.Errorf("CheckApplicationToken(old token) after update = %v, want ErrForbidden", err)
			}
			if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), newToken); err != nil {
				t.Errorf("CheckApplicationToken(new token) after update = %v", err)
			}
			checkPair(t, e, p, tok.AccessToken, tok.RefreshToken)
		})
	}
}

// updateDelivery returns the portal's ONAPPUPDATE as it was POSTed.
// The portal records a delivery once the app has answered it, so the update may be
// handled a moment before it is listed.
func updateDelivery(t *testing.T, p *bitrixtest.Portal) bitrixtest.Delivery {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, d := range p.Deliveries() {
			if d.Event == bitrix.EventAppUpdate && !d.Dropped {
				return d
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the portal sent no ONAPPUPDATE")
	return bitrixtest.Delivery{}
}

// checkPair checks that LeadRouter stores the pair an update carried and that its
// REST calls work with it.
func checkPair(t *testing.T, e *env, p *bitrixtest.Portal, access, refresh string) {
	t.Helper()
	if access == "" || refresh == "" {
		t.Fatalf("the update carried no token pair")
	}
	got, err := e.store.Tokens(context.Background(), p.MemberID())
	if err != nil || got.AccessToken != access || got.RefreshToken != refresh {
		t.Errorf("stored pair is not the update's (err %v)", err)
	}
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call with the update's pair: %v", err)
	}
}
