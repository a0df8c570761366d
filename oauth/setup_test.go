package oauth_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
)

// bundle is what most tests need: a fake Bitrix24 with its OAuth server, a real
// Redis and a Store on both.
type bundle struct {
	srv   *bitrixtest.Server
	rdb   redis.UniversalClient
	store *oauth.Store
}

func setup(t testing.TB, opts bitrixtest.Options) *bundle {
	t.Helper()
	if opts.Rate == 0 {
		opts.Rate = -1 // these tests count refreshes, not the bucket
	}
	srv := bitrixtest.Start(t, opts)
	rdb := redistest.New(t)
	b := &bundle{srv: srv, rdb: rdb}
	b.store = b.newStore(nil)
	return b
}

// newStore returns another Store on the same Redis: another app instance.
func (b *bundle) newStore(mod func(*oauth.Config)) *oauth.Store {
	cfg := oauth.Config{
		ClientID:     b.srv.ClientID(),
		ClientSecret: b.srv.ClientSecret(),
		OAuthURL:     b.srv.OAuthURL(),
		LockPoll:     5 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	return oauth.NewStore(b.rdb, cfg, discard())
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// portal creates a portal with the app registered and stores the administrator's
// tokens, as a verified install page would.
func (b *bundle) portal(t testing.TB, name string) *bitrixtest.Portal {
	t.Helper()
	p := b.srv.NewPortal(bitrixtest.PortalOptions{Name: name, Users: []bitrixtest.User{
		{ID: 1, Name: name, LastName: "Admin", Admin: true},
		{ID: 2, Name: "Rep", LastName: name},
	}})
	p.RegisterApp(bitrixtest.App{InstallURL: "http://app.example.test/install",
		HandlerURL: "http://app.example.test/app"})
	tok := p.Tokens(1)
	_, err := b.store.SaveInstall(context.Background(), oauth.Install{
		MemberID:         p.MemberID(),
		Domain:           p.Domain(),
		ClientEndpoint:   p.ClientEndpoint(),
		ServerEndpoint:   b.srv.OAuthURL() + "/rest/",
		ApplicationToken: p.ApplicationToken(),
		InstalledBy:      1,
		Tokens: oauth.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
			Expiry: tok.Expires, UserID: 1},
	})
	if err != nil {
		t.Fatalf("SaveInstall(%s) = %v", name, err)
	}
	return p
}

// tokenRequests counts the refresh requests the OAuth server served, and those
// it answered with invalid_grant.
func (b *bundle) tokenRequests() (all, invalidGrant int) {
	for _, r := range b.srv.Requests() {
		if r.Method != "oauth.token" {
			continue
		}
		all++
		if r.Error == "invalid_grant" {
			invalidGrant++
		}
	}
	return all, invalidGrant
}

type profile struct {
	ID       string `json:"ID"`
	Name     string `json:"NAME"`
	LastName string `json:"LAST_NAME"`
}
