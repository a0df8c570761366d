package oauth_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	rdb := redistest.Start(t).Client(t)
	newSessions := func(secret string) *oauth.Sessions {
		return oauth.NewStore(rdb, oauth.Config{ClientID: "app", ClientSecret: secret,
			OAuthURL: "https://oauth.bitrix.info", SessionTTL: time.Hour, Now: clock}, discard()).Sessions()
	}
	s := newSessions("secret")
	alice := oauth.FrameUser{MemberID: "aaaa1111", UserID: 7, Admin: true, Lang: "ru", Name: "Alice"}
	bob := oauth.FrameUser{MemberID: "bbbb2222", UserID: 9, Lang: "en", Name: "Bob"}
	aliceToken, bobToken := s.Issue(alice), s.Issue(bob)

	got, err := s.Verify(aliceToken)
	if err != nil {
		t.Fatalf("Verify(fresh token) = %v", err)
	}
	want := &oauth.Session{MemberID: "aaaa1111", UserID: 7, Admin: true, Lang: "ru", Name: "Alice",
		Expires: now.Add(time.Hour)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		name  string
		token string
		at    time.Time
		by    *oauth.Sessions
	}{
		{name: "expired", token: aliceToken, at: now.Add(time.Hour)},
		{name: "other secret", token: aliceToken, at: now, by: newSessions("other")},
		{name: "payload of another portal", token: swapPayload(aliceToken, bobToken), at: now},
		{name: "admin flag added", token: withPayload(bobToken, `{"m":"bbbb2222","u":9,"a":true,"e":1900000000}`), at: now},
		{name: "signature cut", token: aliceToken[:len(aliceToken)-4], at: now},
		{name: "no signature", token: strings.Split(aliceToken, ".")[0] + "." + strings.Split(aliceToken, ".")[1], at: now},
		{name: "empty", token: "", at: now},
		{name: "garbage", token: "lr1.%%%.%%%", at: now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = tc.at
			defer func() { now = time.Unix(1_800_000_000, 0) }()
			by := s
			if tc.by != nil {
				by = tc.by
			}
			if sess, err := by.Verify(tc.token); !errors.Is(err, oauth.ErrBadSession) {
				t.Errorf("Verify() = %+v, %v; want ErrBadSession", sess, err)
			}
		})
	}
}

// swapPayload puts b's payload under a's signature.
func swapPayload(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

// withPayload replaces a token's payload, keeping its signature.
func withPayload(token, payload string) string {
	p := strings.Split(token, ".")
	return p[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + p[2]
}
