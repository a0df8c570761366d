package oauth_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

// TestOnCluster runs the record transactions, the refresh scripts and the
// removal of a portal's data on a real three-master cluster, where a key of the
// wrong slot fails with CROSSSLOT.
func TestOnCluster(t *testing.T) {
	t.Parallel()
	srv := bitrixtest.Start(t, bitrixtest.Options{Rate: -1, RevokeOnRefresh: true})
	rdb := redistest.StartCluster(t).Client(t)
	store := oauth.NewStore(rdb, oauth.Config{ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(),
		OAuthURL: srv.OAuthURL()}, discard())
	ctx := context.Background()

	var portals []*bitrixtest.Portal
	for i := range 6 {
		p := srv.NewPortal(bitrixtest.PortalOptions{Name: "c" + strconv.Itoa(i)})
		p.RegisterApp(bitrixtest.App{HandlerURL: "http://app.example.test/app"})
		tok := p.Tokens(1)
		_, err := store.SaveInstall(ctx, oauth.Install{MemberID: p.MemberID(), Domain: p.Domain(),
			ClientEndpoint: p.ClientEndpoint(), ServerEndpoint: srv.OAuthURL() + "/rest/",
			ApplicationToken: p.ApplicationToken(), InstalledBy: 1,
			Tokens: oauth.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, UserID: 1}})
		if err != nil {
			t.Fatalf("SaveInstall() on a cluster = %v", err)
		}
		if _, _, err := store.Activate(ctx, oauth.Activation{MemberID: p.MemberID(),
			ApplicationToken: p.ApplicationToken()}); err != nil {
			t.Fatalf("Activate() on a cluster = %v", err)
		}
		if err := store.MarkBound(ctx, p.MemberID(), "1"); err != nil {
			t.Fatalf("MarkBound() on a cluster = %v", err)
		}
		p.ExpireAccessTokens()
		if err := store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
			t.Fatalf("refresh on a cluster: %v", err)
		}
		portals = append(portals, p)
	}

	// Data of the portal spread as the other packages keep it, plus a neighbour.
	gone, kept := portals[0].MemberID(), portals[1].MemberID()
	for _, k := range []string{keyspace.Routed(gone), keyspace.AssignmentLog(gone), keyspace.Routed(kept)} {
		if err := rdb.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Uninstall(ctx, gone); err != nil {
		t.Fatalf("Uninstall() on a cluster = %v", err)
	}
	n, err := store.Forget(ctx, gone)
	if err != nil || n < 3 {
		t.Fatalf("Forget() on a cluster = %d, %v; want the record and two data keys", n, err)
	}
	left := clusterKeys(t, rdb, keyspace.PortalPattern(gone))
	if len(left) != 1 || left[0] != keyspace.Portal(gone) {
		t.Errorf("keys left after Forget() = %v, want only the tombstone", left)
	}
	if got := clusterKeys(t, rdb, keyspace.PortalPattern(kept)); len(got) < 3 {
		t.Errorf("the neighbour lost keys: %v", got)
	}
}

func clusterKeys(t *testing.T, rdb *redis.ClusterClient, pattern string) []string {
	t.Helper()
	return allKeys(t, rdb, pattern)
}
