package oauth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestVerifyRenewable(t *testing.T) {
	t.Parallel()
	issued := time.Unix(1_800_000_000, 0)
	rdb := redistest.Start(t).Client(t)
	sessionsAt := func(secret string, at time.Time) *oauth.Sessions {
		return oauth.NewStore(rdb, oauth.Config{ClientID: "app", ClientSecret: secret,
			OAuthURL: "https://oauth.bitrix.info", SessionTTL: time.Hour,
			Now: func() time.Time { return at }}, discard()).Sessions()
	}
	token := sessionsAt("secret", issued).Issue(oauth.FrameUser{MemberID: "aaaa1111", UserID: 7})
	tests := []struct {
		name   string
		at     time.Time
		secret string
		ok     bool
	}{
		{name: "still valid", at: issued.Add(time.Minute), secret: "secret", ok: true},
		{name: "expired within grace", at: issued.Add(3 * time.Hour), secret: "secret", ok: true},
		{name: "expired beyond grace", at: issued.Add(6 * time.Hour), secret: "secret"},
		{name: "signed with another secret", at: issued.Add(time.Minute), secret: "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sessionsAt(tc.secret, tc.at).VerifyRenewable(token, 4*time.Hour)
			switch {
			case tc.ok && (err != nil || got.UserID != 7 || got.MemberID != "aaaa1111"):
				t.Errorf("VerifyRenewable() = %+v, %v; want user 7 of aaaa1111", got, err)
			case !tc.ok && !errors.Is(err, oauth.ErrBadSession):
				t.Errorf("VerifyRenewable() = %+v, %v; want ErrBadSession", got, err)
			}
		})
	}
}
