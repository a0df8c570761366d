package lifecycle_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
)

// TestInstallInEveryOrder drives install page → bindings → installFinish →
// ONAPPINSTALL, with ONAPPINSTALL arriving in every order a portal may deliver it.
func TestInstallInEveryOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults bitrixtest.Faults
		run    func(t *testing.T, e *env, p *bitrixtest.Portal)
		// wantNoToken: the portal never told LeadRouter its application token.
		wantNoToken bool
	}{
		{
			name: "after the install page",
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				res := e.install(t, p)
				if res.Portal.Status != oauth.StatusNew || !res.Finish {
					t.Errorf("after the page: status %s, finish %v; want new, true", res.Portal.Status, res.Finish)
				}
				e.checkBindings(t, p)
				finish(t, p)
			},
		},
		{
			name: "before a second install page is handled",
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				q2, f2 := p.OpenForm(1, "DEFAULT", nil) // a second tab, opened first
				e.install(t, p)
				finish(t, p)
				before := e.waitStatus(t, p.MemberID(), oauth.StatusActive)
				tokens, _ := e.store.Tokens(context.Background(), p.MemberID())
				res, err := e.lc.Install(context.Background(), q2, f2)
				if err != nil {
					t.Fatalf("second Install() = %v", err)
				}
				if res.Finish || res.Portal.Status != oauth.StatusActive {
					t.Errorf("second page: status %s, finish %v; want active, false", res.Portal.Status, res.Finish)
				}
				after, _ := e.store.Tokens(context.Background(), p.MemberID())
				if after != tokens || res.Portal.ApplicationToken != before.ApplicationToken {
					t.Errorf("second page replaced the installation's tokens")
				}
			},
		},
		{
			name:   "twice",
			faults: bitrixtest.Faults{DuplicateEvents: 1},
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				e.install(t, p)
				pageTokens, _ := e.store.Tokens(context.Background(), p.MemberID())
				finish(t, p)
				waitDeliveries(t, p, 2)
				e.waitStatus(t, p.MemberID(), oauth.StatusActive)
				got, _ := e.store.Tokens(context.Background(), p.MemberID())
				if got.RefreshToken != pageTokens.RefreshToken {
					t.Errorf("a repeated ONAPPINSTALL replaced the stored refresh token")
				}
			},
		},
		{
			name: "late, after a sweep found it unfinished",
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				e.install(t, p)
				r, err := e.lc.Sweep(context.Background())
				if err != nil || r.Finished != 0 {
					t.Fatalf("Sweep() before installFinish = %+v, %v; want nothing finished", r, err)
				}
				if got, _ := e.store.Portal(context.Background(), p.MemberID()); got.Status != oauth.StatusNew {
					t.Fatalf("status before installFinish = %s, want new", got.Status)
				}
				finish(t, p)
			},
		},
		{
			name:   "never: the sweep finishes it from the install page",
			faults: bitrixtest.Faults{DropEvents: 1},
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				e.install(t, p)
				finish(t, p)
				waitDeliveries(t, p, 1)
				if got, _ := e.store.Portal(context.Background(), p.MemberID()); got.Status != oauth.StatusNew {
					t.Fatalf("status with ONAPPINSTALL lost = %s, want new", got.Status)
				}
				sweepFinishes(t, e)
			},
		},
		{
			name:   "never, and the page brought no application token",
			faults: bitrixtest.Faults{DropEvents: 1},
			run: func(t *testing.T, e *env, p *bitrixtest.Portal) {
				q, f := p.OpenForm(1, "DEFAULT", nil)
				f.Del("APPLICATION_TOKEN")
				f.Del("SERVER_ENDPOINT")
				f.Del("APPLICATION_SCOPE")
				if _, err := e.lc.Install(context.Background(), q, f); err != nil {
					t.Fatalf("Install() without the newer fields = %v", err)
				}
				finish(t, p)
				waitDeliveries(t, p, 1)
				sweepFinishes(t, e)
			},
			wantNoToken: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.faults)
			p := e.newPortal(t, "acme")
			tc.run(t, e, p)
			got := e.waitStatus(t, p.MemberID(), oauth.StatusActive)
			e.checkBindings(t, p)
			if err := e.works(p.MemberID()); err != nil {
				t.Errorf("REST call with the stored tokens: %v", err)
			}
			if tc.wantNoToken {
				if got.ApplicationToken != "" || !strings.Contains(got.LastError, "Reinstall") {
					t.Errorf("portal = token %q, last error %q; want none and a hint", got.ApplicationToken, got.LastError)
				}
				return
			}
			if _, err := e.store.CheckApplicationToken(context.Background(), p.MemberID(), p.ApplicationToken()); err != nil {
				t.Errorf("CheckApplicationToken(the portal's token) = %v", err)
			}
			if got.Domain != p.Domain() || got.ClientEndpoint != p.ClientEndpoint() || got.InstalledBy != 1 {
				t.Errorf("portal record = %+v, want the portal's domain, endpoint and installer", got)
			}
		})
	}
}

func finish(t *testing.T, p *bitrixtest.Portal) {
	t.Helper()
	if err := p.FinishInstall(1); err != nil {
		t.Fatalf("FinishInstall() = %v", err)
	}
}

func waitDeliveries(t *testing.T, p *bitrixtest.Portal, n int) {
	t.Helper()
	if err := p.WaitDeliveries(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

func sweepFinishes(t *testing.T, e *env) {
	t.Helper()
	r, err := e.lc.Sweep(context.Background())
	if err != nil || r.Finished != 1 {
		t.Fatalf("Sweep() = %+v, %v; want one install finished", r, err)
	}
}

func TestFirstInstallEventOfUnknownPortal(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	p := e.srv.NewPortal(bitrixtest.PortalOptions{Name: "apionly"})
	// An app without an install page: the portal POSTs ONAPPINSTALL at once.
	p.RegisterApp(bitrixtest.App{APIOnly: true, InstallURL: e.app + "/events", HandlerURL: e.app + "/app"})
	got := e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	if got.ApplicationToken != p.ApplicationToken() {
		t.Errorf("stored application token differs from the portal's")
	}
	e.waitBindings(t, p)
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call with the event's tokens: %v", err)
	}
}

func TestForgedInstallEventOfUnknownPortal(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	victim := e.srv.NewPortal(bitrixtest.PortalOptions{Name: "victim"})
	e.register(victim)
	attacker := e.newPortal(t, "attacker")
	tok := attacker.Tokens(1)
	ev := appEvent(bitrix.EventAppInstall, victim.MemberID(), "forged-token", url.Values{
		"auth[access_token]":    {tok.AccessToken},
		"auth[refresh_token]":   {tok.RefreshToken},
		"auth[domain]":          {victim.Domain()},
		"auth[server_endpoint]": {e.srv.OAuthURL() + "/rest/"},
	})
	if err := e.lc.HandleAppEvent(context.Background(), ev); !errors.Is(err, oauth.ErrForbidden) {
		t.Fatalf("HandleAppEvent(forged ONAPPINSTALL) = %v, want ErrForbidden", err)
	}
	if _, err := e.store.Portal(context.Background(), victim.MemberID()); !errors.Is(err, oauth.ErrUnknownPortal) {
		t.Errorf("forged ONAPPINSTALL left a record: %v", err)
	}
}

// appEvent builds an application event as ParseEvent would from the portal's POST.
func appEvent(name, memberID, appToken string, extra url.Values) *bitrix.Event {
	form := url.Values{
		"event":                   {name},
		"auth[member_id]":         {memberID},
		"auth[application_token]": {appToken},
	}
	for k, v := range extra {
		form[k] = v
	}
	ev, err := bitrix.ParseEvent(form)
	if err != nil {
		panic(err)
	}
	return ev
}

func TestInstallRefusals(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	victim := e.newPortal(t, "victim")
	other := e.newPortal(t, "other")
	tests := []struct {
		name    string
		form    func() (url.Values, url.Values)
		wantErr error
	}{
		{
			name:    "a user who is not an administrator",
			form:    func() (url.Values, url.Values) { return victim.OpenForm(2, "DEFAULT", nil) },
			wantErr: lifecycle.ErrNotAdmin,
		},
		{
			name: "another portal's AUTH_ID under the victim's member_id",
			form: func() (url.Values, url.Values) {
				q, f := other.OpenForm(1, "DEFAULT", nil)
				f.Set("member_id", victim.MemberID())
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "a DOMAIN that is not the portal's",
			form: func() (url.Values, url.Values) {
				q, f := victim.OpenForm(1, "DEFAULT", nil)
				q.Set("DOMAIN", "evil.example.com")
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "no refresh token",
			form: func() (url.Values, url.Values) {
				q, f := victim.OpenForm(1, "DEFAULT", nil)
				f.Del("REFRESH_ID")
				return q, f
			},
			wantErr: oauth.ErrBadFrame,
		},
		{
			name:    "nothing at all",
			form:    func() (url.Values, url.Values) { return url.Values{}, url.Values{} },
			wantErr: oauth.ErrBadFrame,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, f := tc.form()
			if _, err := e.lc.Install(context.Background(), q, f); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Install() = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := e.store.Portal(context.Background(), victim.MemberID()); !errors.Is(err, oauth.ErrUnknownPortal) {
		t.Errorf("refused installs left a record: %v", err)
	}
	if b := bindings(victim); len(b) != 0 {
		t.Errorf("refused installs bound %v", b)
	}
}

func TestBindIsIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	res := e.install(t, p)
	if res.Bound.Added != len(e.wantBindings()) {
		t.Errorf("first bind added %d, want %d", res.Bound.Added, len(e.wantBindings()))
	}
	binds := e.countRequests(p.MemberID(), "event.bind")
	r, err := e.lc.Bind(ctx, p.MemberID())
	if err != nil || r.Added != 0 {
		t.Fatalf("second Bind() = %+v, %v; want nothing added", r, err)
	}
	if got := e.countRequests(p.MemberID(), "event.bind"); got != binds {
		t.Errorf("second Bind() sent %d event.bind", got-binds)
	}
	// Someone removed one handler by hand: only that one is bound again.
	err = e.store.Client(p.MemberID()).Call(ctx, "event.unbind",
		map[string]any{"event": "ONCRMLEADUPDATE", "handler": e.app + "/events"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err = e.lc.Bind(ctx, p.MemberID())
	if err != nil || r.Added != 1 {
		t.Fatalf("Bind() after an unbind = %+v, %v; want one added", r, err)
	}
	e.checkBindings(t, p)
}

func TestUpdateBindsAgain(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	before, _ := e.store.Tokens(context.Background(), p.MemberID())
	p.UpdateApp("2")
	got := e.waitFor(t, p.MemberID(), "version 2", func(r *oauth.Portal) bool {
		return r.Version == "2" && r.BoundVersion == "2"
	})
	e.checkBindings(t, p)
	if got.Status != oauth.StatusActive || got.ApplicationToken != p.ApplicationToken() {
		t.Errorf("after update: status %s, token kept %v", got.Status, got.ApplicationToken == p.ApplicationToken())
	}
	// The stored pair still serves, so the update's pair is not taken: a repeated
	// delivery of the event must not bring back a refresh token already spent.
	after, _ := e.store.Tokens(context.Background(), p.MemberID())
	if after.RefreshToken != before.RefreshToken {
		t.Errorf("an update with the stored application token replaced a working pair")
	}
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call after update: %v", err)
	}
}

func TestUpdateWithForeignTokenRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	ev := appEvent(bitrix.EventAppUpdate, p.MemberID(), "not-the-token", url.Values{"data[VERSION]": {"9"}})
	if err := e.lc.HandleAppEvent(context.Background(), ev); !errors.Is(err, oauth.ErrForbidden) {
		t.Fatalf("HandleAppEvent(forged ONAPPUPDATE) = %v, want ErrForbidden", err)
	}
	got, _ := e.store.Portal(context.Background(), p.MemberID())
	if got.Version == "9" || got.ApplicationToken != p.ApplicationToken() {
		t.Errorf("forged update changed the record: version %s", got.Version)
	}
}

func TestUninstall(t *testing.T) {
	t.Parallel()
	for _, clean := range []bool{false, true} {
		name := "keep data"
		if clean {
			name = "clean"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, bitrixtest.Faults{})
			ctx := context.Background()
			p := e.newPortal(t, "acme")
			e.install(t, p)
			finish(t, p)
			e.waitStatus(t, p.MemberID(), oauth.StatusActive)
			var hooked []bool
			e.lc.OnUninstall(func(_ context.Context, memberID string, c bool) error {
				if memberID == p.MemberID() {
					hooked = append(hooked, c)
				}
				return nil
			})
			routed := keyspace.Routed(p.MemberID())
			if err := e.rdb.HSet(ctx, routed, "17", `{"owner":2}`).Err(); err != nil {
				t.Fatal(err)
			}

			p.Uninstall(clean)
			e.waitStatus(t, p.MemberID(), oauth.StatusDeleted)
			if len(hooked) != 1 || hooked[0] != clean {
				t.Errorf("uninstall hooks saw %v, want [%v]", hooked, clean)
			}
			if err := e.works(p.MemberID()); !errors.Is(err, oauth.ErrInactive) {
				t.Errorf("REST call after uninstall: %v, want ErrInactive", err)
			}
			if n, _ := e.rdb.Exists(ctx, keyspace.Token(p.MemberID())).Result(); n != 0 {
				t.Errorf("tokens kept after uninstall")
			}
			if active, _ := e.store.ActivePortals(ctx); len(active) != 0 {
				t.Errorf("active portals after uninstall = %v", active)
			}
			keys := allKeys(t, e.rdb, keyspace.PortalPattern(p.MemberID()))
			want := []string{keyspace.Portal(p.MemberID()), routed}
			if clean {
				want = []string{keyspace.Portal(p.MemberID())} // the tombstone
			}
			if !sameSet(keys, want) {
				t.Errorf("portal keys after uninstall = %v, want %v", keys, want)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

func TestForgedUninstallRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	other := e.newPortal(t, "other")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	tests := []struct {
		name, token string
	}{
		{name: "wrong token", token: "0123456789abcdef0123456789abcdef"},
		{name: "no token", token: ""},
		{name: "another portal's token", token: other.ApplicationToken()},
		{name: "token with a byte changed", token: p.ApplicationToken()[:len(p.ApplicationToken())-1] + "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := appEvent(bitrix.EventAppUninstall, p.MemberID(), tc.token, url.Values{"data[CLEAN]": {"1"}})
			if err := e.lc.HandleAppEvent(ctx, ev); !errors.Is(err, oauth.ErrForbidden) {
				t.Fatalf("HandleAppEvent(forged uninstall) = %v, want ErrForbidden", err)
			}
		})
	}
	got, _ := e.store.Portal(ctx, p.MemberID())
	if got.Status != oauth.StatusActive {
		t.Errorf("status after forged uninstalls = %s, want active", got.Status)
	}
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call after forged uninstalls: %v", err)
	}
}

func TestReinstallReplacesRecord(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	oldToken := p.ApplicationToken()
	p.Uninstall(false)
	e.waitStatus(t, p.MemberID(), oauth.StatusDeleted)

	e.register(p)
	res := e.install(t, p)
	if res.Portal.Status != oauth.StatusNew {
		t.Errorf("reinstall page: status %s, want new", res.Portal.Status)
	}
	finish(t, p)
	got := e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	if got.ApplicationToken != p.ApplicationToken() || got.ApplicationToken == oldToken {
		t.Errorf("reinstall kept the old application token")
	}
	if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), oldToken); !errors.Is(err, oauth.ErrForbidden) {
		t.Errorf("old application token after reinstall: %v, want ErrForbidden", err)
	}
	e.checkBindings(t, p)
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call after reinstall: %v", err)
	}
}

func TestReinstallWithoutUninstallEvent(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	// The uninstall's event is lost: LeadRouter still thinks the portal is active.
	e.srv.SetFaults(bitrixtest.Faults{DropEvents: 1})
	p.Uninstall(false)
	waitDeliveries(t, p, 2)
	e.srv.SetFaults(bitrixtest.Faults{})

	e.register(p)
	e.install(t, p)
	finish(t, p)
	got := e.waitFor(t, p.MemberID(), "reinstalled", func(r *oauth.Portal) bool {
		return r.Status == oauth.StatusActive && r.ApplicationToken == p.ApplicationToken()
	})
	_ = got
	e.checkBindings(t, p)
	if err := e.works(p.MemberID()); err != nil {
		t.Errorf("REST call after reinstall: %v", err)
	}
}

func TestNotAnAppEvent(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ev := appEvent(bitrix.EventLeadAdd, "abc", "t", nil)
	if err := e.lc.HandleAppEvent(context.Background(), ev); !errors.Is(err, lifecycle.ErrNotAppEvent) {
		t.Errorf("HandleAppEvent(ONCRMLEADADD) = %v, want ErrNotAppEvent", err)
	}
	bad := appEvent(bitrix.EventAppUninstall, "abc}:*", "t", nil)
	if err := e.lc.HandleAppEvent(context.Background(), bad); !errors.Is(err, oauth.ErrBadMemberID) {
		t.Errorf("HandleAppEvent(bad member_id) = %v, want ErrBadMemberID", err)
	}
}

func TestAdministratorsPageSuppliesMissingApplicationToken(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{DropEvents: 1})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	q, f := p.OpenForm(1, "DEFAULT", nil)
	f.Del("APPLICATION_TOKEN")
	if _, err := e.lc.Install(ctx, q, f); err != nil {
		t.Fatal(err)
	}
	finish(t, p)
	waitDeliveries(t, p, 1)
	sweepFinishes(t, e)

	// An employee's page carries the token too, but only an administrator's is taken.
	q, f = p.OpenForm(2, "DEFAULT", nil)
	if _, err := e.store.VerifyFrame(ctx, q, f); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken())
	if !errors.Is(err, oauth.ErrForbidden) {
		t.Errorf("token taken from an employee's page: %v", err)
	}
	q, f = p.OpenForm(1, "DEFAULT", nil)
	if _, err := e.store.VerifyFrame(ctx, q, f); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken()); err != nil {
		t.Errorf("CheckApplicationToken() after the administrator's page = %v", err)
	}
	if got, _ := e.store.Portal(ctx, p.MemberID()); got.LastError != "" {
		t.Errorf("last error kept: %q", got.LastError)
	}
}
