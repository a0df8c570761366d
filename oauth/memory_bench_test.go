package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
)

// BenchmarkIdlePortalMemory installs 10,000 idle portals the way the install page
// and ONAPPINSTALL leave them (record, token pair, indexes) and reports Redis
// used_memory per portal; the product's target is 4 KB.
func BenchmarkIdlePortalMemory(b *testing.B) {
	const portals = 10_000
	for b.Loop() {
		b.StopTimer()
		rdb := redistest.Start(b).Client(b)
		store := oauth.NewStore(rdb, oauth.Config{ClientID: "app.1", ClientSecret: "s",
			OAuthURL: "https://oauth.bitrix.info"}, discard())
		ctx := context.Background()
		before := usedMemory(b, rdb)
		b.StartTimer()
		for range portals {
			member := randomHex(16)
			domain := "b24-" + randomHex(3) + ".bitrix24.com"
			_, err := store.SaveInstall(ctx, oauth.Install{
				MemberID: member, Domain: domain, ClientEndpoint: "https://" + domain + "/rest/",
				ServerEndpoint: "https://oauth.bitrix.info/rest/", Scope: "crm,user,placement,im,timeman",
				Version: "1", AppStatus: "L", Lang: "en", ApplicationToken: randomHex(16), InstalledBy: 1,
				Tokens: oauth.Tokens{AccessToken: randomHex(35), RefreshToken: randomHex(35),
					Expiry: time.Now().Add(time.Hour), UserID: 1},
			})
			if err != nil {
				b.Fatal(err)
			}
			p, err := store.Portal(ctx, member)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := store.Activate(ctx, oauth.Activation{MemberID: member,
				ApplicationToken: p.ApplicationToken, Version: "1"}); err != nil {
				b.Fatal(err)
			}
			if err := store.MarkBound(ctx, member, "1"); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(usedMemory(b, rdb)-before)/portals, "bytes/portal")
		b.StartTimer()
	}
}

func randomHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}
