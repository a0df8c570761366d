package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestThousandPortalsStayApart(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	before := usedMemory(t, b.rdb)
	const n = 1000
	portals := make([]*bitrixtest.Portal, n)
	for i := range portals {
		portals[i] = b.portal(t, "p"+strconv.Itoa(i))
		_, _, err := b.store.Activate(ctx, oauth.Activation{MemberID: portals[i].MemberID(),
			ApplicationToken: portals[i].ApplicationToken(), Version: "1", Lang: "en"})
		if err != nil {
			t.Fatalf("Activate(%d) = %v", i, err)
		}
	}
	perPortal := (usedMemory(t, b.rdb) - before) / n
	t.Logf("Redis memory per idle portal: %d bytes", perPortal)
	if perPortal > 4096 {
		t.Errorf("Redis memory per idle portal = %d bytes, want ≤ 4096", perPortal)
	}

	seen := map[string]bool{}
	for i, p := range portals {
		// Each portal's client reaches that portal, as its own administrator.
		var out profile
		if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &out); err != nil {
			t.Fatalf("profile on portal %d: %v", i, err)
		}
		if want := "p" + strconv.Itoa(i); out.Name != want {
			t.Fatalf("profile on portal %d answered %q, want %q", i, out.Name, want)
		}
		tok, err := b.store.Tokens(ctx, p.MemberID())
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok.AccessToken] || seen[tok.RefreshToken] {
			t.Fatalf("portal %d shares a token with another portal", i)
		}
		seen[tok.AccessToken], seen[tok.RefreshToken] = true, true
		// Another portal's application token opens nothing here.
		next := portals[(i+1)%n]
		_, err = b.store.CheckApplicationToken(ctx, p.MemberID(), next.ApplicationToken())
		if !errors.Is(err, oauth.ErrForbidden) {
			t.Fatalf("portal %d accepted portal %d's application token: %v", i, (i+1)%n, err)
		}
		if _, err := b.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken()); err != nil {
			t.Fatalf("portal %d refused its own application token: %v", i, err)
		}
	}
	active, err := b.store.ActivePortals(ctx)
	if err != nil || len(active) != n {
		t.Errorf("ActivePortals() = %d portals, %v; want %d", len(active), err, n)
	}
	assertOneSlotPerPortal(t, b.rdb, portals[0].MemberID())
}

// assertOneSlotPerPortal checks every key of the portal carries its hash tag.
func assertOneSlotPerPortal(t *testing.T, rdb redis.UniversalClient, memberID string) {
	t.Helper()
	keys := allKeys(t, rdb, "*"+memberID+"*")
	if len(keys) < 2 {
		t.Fatalf("portal keys = %v, want the record and the tokens", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "lr:"+keyspace.Tag(memberID)+":") {
			t.Errorf("key %q lacks the portal's hash tag", k)
		}
	}
}

// usedMemory returns Redis used_memory, summed over the masters of a cluster.
func usedMemory(t testing.TB, rdb redis.UniversalClient) int64 {
	t.Helper()
	var total int64
	eachNode(t, rdb, func(node *redis.Client) error {
		info, err := node.Info(context.Background(), "memory").Result()
		if err != nil {
			return err
		}
		n, err := usedMemoryOf(info)
		total += n
		return err
	})
	return total
}

func usedMemoryOf(info string) (int64, error) {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO")
}

func TestCheckApplicationToken(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	p := b.portal(t, "tokens")
	tests := []struct {
		name, memberID, token string
		wantErr               error
	}{
		{name: "right token", memberID: p.MemberID(), token: p.ApplicationToken()},
		{name: "wrong token", memberID: p.MemberID(), token: "00000000000000000000000000000000", wantErr: oauth.ErrForbidden},
		{name: "empty token", memberID: p.MemberID(), token: "", wantErr: oauth.ErrForbidden},
		{name: "unknown portal", memberID: "ffffffffffffffffffffffffffffffff",
			token: p.ApplicationToken(), wantErr: oauth.ErrForbidden},
		{name: "malformed member_id", memberID: "*", token: p.ApplicationToken(), wantErr: oauth.ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.store.CheckApplicationToken(ctx, tc.memberID, tc.token)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("CheckApplicationToken() = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if err := b.store.Uninstall(ctx, p.MemberID()); err != nil {
		t.Fatal(err)
	}
	_, err := b.store.CheckApplicationToken(ctx, p.MemberID(), p.ApplicationToken())
	if !errors.Is(err, oauth.ErrForbidden) {
		t.Errorf("CheckApplicationToken(uninstalled portal) = %v, want ErrForbidden", err)
	}
}
