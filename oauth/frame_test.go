package oauth_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestVerifyFrame(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	acme := b.portal(t, "acme")
	other := b.portal(t, "other")
	unknown := b.srv.NewPortal(bitrixtest.PortalOptions{Name: "fresh"})
	unknown.RegisterApp(bitrixtest.App{HandlerURL: "http://app.example.test/app"})

	var hits int
	var mu sync.Mutex
	attacker := newCountingServer(t, &mu, &hits)

	tests := []struct {
		name    string
		form    func() (url.Values, url.Values)
		want    *oauth.FrameUser
		wantErr error
	}{
		{
			name: "administrator on a stored portal",
			form: func() (url.Values, url.Values) {
				return acme.OpenForm(1, "CRM_LEAD_DETAIL_TAB", map[string]any{"ID": 42})
			},
			want: &oauth.FrameUser{MemberID: acme.MemberID(), UserID: 1, Admin: true, Lang: "en",
				Name: "acme Admin", Placement: "CRM_LEAD_DETAIL_TAB",
				PlacementOptions: map[string]any{"ID": "42"}, Origin: b.srv.URL()},
		},
		{
			name: "employee",
			form: func() (url.Values, url.Values) { return acme.OpenForm(2, "", nil) },
			want: &oauth.FrameUser{MemberID: acme.MemberID(), UserID: 2, Lang: "en", Name: "Rep acme",
				Placement: "DEFAULT", Origin: b.srv.URL()},
		},
		{
			name: "portal not stored yet: checked with app.info",
			form: func() (url.Values, url.Values) { return unknown.OpenForm(1, "", nil) },
			want: &oauth.FrameUser{MemberID: unknown.MemberID(), UserID: 1, Admin: true, Lang: "en",
				Name: "Admin", Placement: "DEFAULT", Origin: b.srv.URL()},
		},
		{
			name: "another portal's token under this member_id",
			form: func() (url.Values, url.Values) {
				q, f := other.OpenForm(1, "", nil)
				f.Set("member_id", acme.MemberID())
				f.Del("APPLICATION_TOKEN")
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "unknown portal, posted domain and server point elsewhere",
			form: func() (url.Values, url.Values) {
				q, f := unknown.OpenForm(1, "", nil)
				q.Set("DOMAIN", "evil.example.com")
				f.Set("SERVER_ENDPOINT", attacker+"/rest/")
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "forged application token",
			form: func() (url.Values, url.Values) {
				q, f := acme.OpenForm(1, "", nil)
				f.Set("APPLICATION_TOKEN", "0123456789abcdef")
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "made-up AUTH_ID",
			form: func() (url.Values, url.Values) {
				q, f := acme.OpenForm(1, "", nil)
				f.Set("AUTH_ID", "feedface")
				return q, f
			},
			wantErr: oauth.ErrForbidden,
		},
		{
			name: "no AUTH_ID",
			form: func() (url.Values, url.Values) {
				q, f := acme.OpenForm(1, "", nil)
				f.Del("AUTH_ID")
				return q, f
			},
			wantErr: oauth.ErrBadFrame,
		},
		{
			name: "member_id that would escape its keys",
			form: func() (url.Values, url.Values) {
				q, f := acme.OpenForm(1, "", nil)
				f.Set("member_id", acme.MemberID()+"}:*")
				return q, f
			},
			wantErr: oauth.ErrBadFrame,
		},
		{
			name: "placement options not JSON",
			form: func() (url.Values, url.Values) {
				q, f := acme.OpenForm(1, "", nil)
				f.Set("PLACEMENT_OPTIONS", "{ID:")
				return q, f
			},
			wantErr: oauth.ErrBadFrame,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, f := tc.form()
			got, err := b.store.VerifyFrame(ctx, q, f)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("VerifyFrame() = %+v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyFrame() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("VerifyFrame() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("the posted SERVER_ENDPOINT got %d requests", hits)
	}
}
