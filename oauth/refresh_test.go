package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

// stormRefreshes runs calls concurrent REST calls spread over instances Stores
// that share one Redis, after every access token of the portal expired, and
// returns the refresh requests and invalid_grant answers the OAuth server saw.
func stormRefreshes(t testing.TB, b *bundle, p *bitrixtest.Portal, instances, calls int) (int, int) {
	stores := make([]*oauth.Store, instances)
	for i := range stores {
		stores[i] = b.newStore(nil)
	}
	p.ExpireAccessTokens()
	before, beforeInvalid := b.tokenRequests()
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	start := make(chan struct{})
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var out profile
			err := stores[i%instances].Client(p.MemberID()).Call(context.Background(), "profile", nil, &out)
			if err == nil && out.ID != "1" {
				err = fmt.Errorf("profile ID = %q, want 1", out.ID)
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call after expiry: %v", err)
		}
	}
	after, afterInvalid := b.tokenRequests()
	return after - before, afterInvalid - beforeInvalid
}

func TestRefreshStormRefreshesOnce(t *testing.T) {
	t.Parallel()
	// RevokeOnRefresh: the old access token dies at the refresh too (the strict
	// reading of Bitrix24's documentation).
	b := setup(t, bitrixtest.Options{RevokeOnRefresh: true})
	p := b.portal(t, "storm")
	for round := range 3 {
		refreshes, invalid := stormRefreshes(t, b, p, 4, 100)
		if refreshes != 1 || invalid != 0 {
			t.Errorf("round %d: refresh requests = %d, invalid_grant = %d; want 1 and 0", round, refreshes, invalid)
		}
	}
	if _, err := b.rdb.Get(context.Background(), keyspace.RefreshLock(p.MemberID())).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("refresh lock left behind: err = %v", err)
	}
}

// BenchmarkRefreshStorm times a storm of 100 calls on 4 instances that all meet
// expired_token, and reports the refresh requests per storm (the target is 1).
func BenchmarkRefreshStorm(b *testing.B) {
	bb := setup(b, bitrixtest.Options{RevokeOnRefresh: true})
	p := bb.portal(b, "bench")
	var refreshes, invalid int
	for b.Loop() {
		r, i := stormRefreshes(b, bb, p, 4, 100)
		refreshes += r
		invalid += i
	}
	b.ReportMetric(float64(refreshes)/float64(b.N), "refreshes/storm")
	b.ReportMetric(float64(invalid)/float64(b.N), "invalid_grants/storm")
}

func TestRefreshStoresRotatedPairBeforeUse(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{RevokeOnRefresh: true})
	p := b.portal(t, "rotate")
	ctx := context.Background()
	old, err := b.store.Tokens(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	p.ExpireAccessTokens()
	if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
		t.Fatalf("profile after expiry: %v", err)
	}
	got, err := b.store.Tokens(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken == old.RefreshToken || got.AccessToken == old.AccessToken {
		t.Errorf("stored pair not rotated")
	}
	if time.Until(got.Expiry) < 50*time.Minute {
		t.Errorf("stored expiry = %v, want about an hour ahead", got.Expiry)
	}
	// The old refresh token is spent: using it again must fail at the server.
	conf := oauth2.Config{ClientID: b.srv.ClientID(), ClientSecret: b.srv.ClientSecret(),
		Endpoint: oauth2.Endpoint{TokenURL: b.srv.OAuthURL() + "/oauth/token/", AuthStyle: oauth2.AuthStyleInParams}}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("reusing the spent refresh token: err = %v, want invalid_grant", err)
	}
	score, err := b.rdb.ZScore(ctx, keyspace.Portals(), p.MemberID()).Result()
	if err != nil || time.Since(time.Unix(int64(score), 0)) > time.Minute {
		t.Errorf("keep-alive score = %v (%v), want now", score, err)
	}
}

func TestInvalidGrantBlocksPortal(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	p := b.portal(t, "spent")
	ctx := context.Background()
	spendStoredRefreshToken(t, b, p.MemberID())
	p.ExpireAccessTokens()

	err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{})
	if !errors.Is(err, oauth.ErrInactive) {
		t.Fatalf("call with a spent refresh token: err = %v, want ErrInactive", err)
	}
	got, err := b.store.Portal(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != oauth.StatusBlocked || !strings.Contains(got.LastError, "administrator") {
		t.Errorf("portal = %s (%q), want blocked with a reason for the administrator", got.Status, got.LastError)
	}
	// A blocked portal's work stops without further requests to the OAuth server.
	before, _ := b.tokenRequests()
	if _, err := b.store.Auth(p.MemberID()).Credentials(ctx); !errors.Is(err, oauth.ErrInactive) {
		t.Errorf("Credentials of a blocked portal: err = %v, want ErrInactive", err)
	}
	if after, _ := b.tokenRequests(); after != before {
		t.Errorf("blocked portal made %d refresh requests", after-before)
	}

	// An employee opening the app changes nothing; an administrator's page brings
	// a fresh pair and the portal works again.
	q, f := p.OpenForm(2, "", nil)
	if _, err := b.store.VerifyFrame(ctx, q, f); err != nil {
		t.Fatalf("VerifyFrame(employee) = %v", err)
	}
	if got, _ := b.store.Portal(ctx, p.MemberID()); got.Status != oauth.StatusBlocked {
		t.Errorf("status after an employee's page = %s, want blocked", got.Status)
	}
	q, f = p.OpenForm(1, "", nil)
	if _, err := b.store.VerifyFrame(ctx, q, f); err != nil {
		t.Fatalf("VerifyFrame(administrator) = %v", err)
	}
	got, _ = b.store.Portal(ctx, p.MemberID())
	if got.Status != oauth.StatusActive || got.LastError != "" {
		t.Errorf("after an administrator's page: %s %q, want active and no error", got.Status, got.LastError)
	}
	if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
		t.Errorf("call after the administrator's page: %v", err)
	}
}

// spendStoredRefreshToken uses the portal's stored refresh token at the OAuth
// server behind the Store's back and returns the pair it got.
func spendStoredRefreshToken(t *testing.T, b *bundle, memberID string) *oauth2.Token {
	t.Helper()
	ctx := context.Background()
	stored, err := b.store.Tokens(ctx, memberID)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: b.srv.ClientID(), ClientSecret: b.srv.ClientSecret(),
		Endpoint: oauth2.Endpoint{TokenURL: b.srv.OAuthURL() + "/oauth/token/", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: stored.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("spend refresh token: %v", err)
	}
	return tok
}

// lateWriter is a transport that, just before the Store's refresh request leaves,
// lets another "instance" spend the same refresh token and store its pair, so the
// Store's own request meets invalid_grant.
type lateWriter struct {
	once sync.Once
	race func()
}

func (l *lateWriter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth/token/") {
		l.once.Do(l.race)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestInvalidGrantPicksUpWinnersPair(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	p := b.portal(t, "race")
	ctx := context.Background()
	var winner *oauth2.Token
	lw := &lateWriter{race: func() {
		winner = spendStoredRefreshToken(t, b, p.MemberID())
		err := b.rdb.HSet(ctx, keyspace.Token(p.MemberID()), "access_token", winner.AccessToken,
			"refresh_token", winner.RefreshToken).Err()
		if err != nil {
			t.Errorf("store winner's pair: %v", err)
		}
	}}
	loser := b.newStore(func(c *oauth.Config) { c.HTTPClient = &http.Client{Transport: lw} })
	p.ExpireAccessTokens()

	if err := loser.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
		t.Fatalf("call after losing the refresh race: %v", err)
	}
	got, err := b.store.Portal(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == oauth.StatusBlocked {
		t.Errorf("portal blocked after another instance won the refresh: %q", got.LastError)
	}
	stored, _ := b.store.Tokens(ctx, p.MemberID())
	if winner == nil || stored.RefreshToken != winner.RefreshToken {
		t.Errorf("stored refresh token is not the winner's")
	}
}

func TestKeepAliveRefreshesOnlyOldTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	idle := b.portal(t, "idle")
	busy := b.portal(t, "busy")
	old := time.Now().Add(-30 * 24 * time.Hour)
	z := redis.Z{Score: float64(old.Unix()), Member: idle.MemberID()}
	if err := b.rdb.ZAdd(ctx, keyspace.Portals(), z).Err(); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-25 * 24 * time.Hour)
	before, _ := b.tokenRequests()
	n, err := b.store.KeepAlive(ctx, cutoff, 100)
	if err != nil || n != 1 {
		t.Fatalf("KeepAlive() = %d, %v; want 1 refresh", n, err)
	}
	n, err = b.newStore(nil).KeepAlive(ctx, cutoff, 100)
	if err != nil || n != 0 {
		t.Errorf("second KeepAlive() = %d, %v; want 0", n, err)
	}
	after, invalid := b.tokenRequests()
	if after-before != 1 || invalid != 0 {
		t.Errorf("refresh requests = %d (invalid_grant %d), want 1", after-before, invalid)
	}
	for _, p := range []*bitrixtest.Portal{idle, busy} {
		if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
			t.Errorf("portal %s after keep-alive: %v", p.Name(), err)
		}
	}
}

func TestMovedPortalUpdatesEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	p := b.portal(t, "oldname")
	p.Rename("newname")
	var out profile
	if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &out); err != nil {
		t.Fatalf("call after rename: %v", err)
	}
	got, err := b.store.Portal(ctx, p.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientEndpoint != p.ClientEndpoint() || !strings.Contains(got.ClientEndpoint, "newname") {
		t.Errorf("stored endpoint = %q, want %q", got.ClientEndpoint, p.ClientEndpoint())
	}
	if got.Domain != p.Domain() {
		t.Errorf("stored domain = %q, want %q", got.Domain, p.Domain())
	}
}

func TestUntrustedServerEndpointNeverGetsTheSecret(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	p := b.portal(t, "phish")
	// A forged install page named an attacker's OAuth server.
	var hits int
	var mu sync.Mutex
	attacker := newCountingServer(t, &mu, &hits)
	if err := b.rdb.HSet(ctx, keyspace.Portal(p.MemberID()), "server_endpoint", attacker+"/rest/").Err(); err != nil {
		t.Fatal(err)
	}
	p.ExpireAccessTokens()
	if err := b.store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
		t.Fatalf("call after expiry: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("untrusted OAuth server got %d requests", hits)
	}
	if got := b.store.OAuthServer(attacker + "/rest/"); got != b.srv.OAuthURL()+"/rest/" {
		t.Errorf("OAuthServer(untrusted) = %q, want the configured one", got)
	}
	for _, trusted := range []string{"https://oauth.bitrix.info/rest/", "https://oauth.bitrix24.tech/rest/"} {
		if got := b.store.OAuthServer(trusted); got != trusted {
			t.Errorf("OAuthServer(%q) = %q, want it kept", trusted, got)
		}
	}
}

func TestRefreshWaitsForAnotherInstancesLock(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{})
	ctx := context.Background()
	p := b.portal(t, "locked")
	store := b.newStore(func(c *oauth.Config) { c.LockTTL = 300 * time.Millisecond })
	lock := keyspace.RefreshLock(p.MemberID())

	// An instance that died holding the lock: its lock expires and the refresh goes on.
	if err := b.rdb.Set(ctx, lock, "dead-instance", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	p.ExpireAccessTokens()
	if err := store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{}); err != nil {
		t.Fatalf("call after a dead instance's lock expired: %v", err)
	}
	if n, invalid := b.tokenRequests(); n != 1 || invalid != 0 {
		t.Errorf("refresh requests = %d (invalid_grant %d), want 1", n, invalid)
	}

	// A lock that never goes away: the caller gives up with ErrRefreshBusy and
	// nothing is spent.
	if err := b.rdb.Set(ctx, lock, "stuck-instance", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p.ExpireAccessTokens()
	err := store.Client(p.MemberID()).Call(ctx, "profile", nil, &profile{})
	if !errors.Is(err, oauth.ErrRefreshBusy) {
		t.Errorf("call while the lock is stuck: %v, want ErrRefreshBusy", err)
	}
	if n, _ := b.tokenRequests(); n != 1 {
		t.Errorf("refresh requests = %d, want still 1", n)
	}
	if owner, _ := b.rdb.Get(ctx, lock).Result(); owner != "stuck-instance" {
		t.Errorf("another instance's lock was released: owner %q", owner)
	}
}
