package intake

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/routing"
)

// People of the test portal.
const (
	admin     = 1
	ann       = 2 // sales team
	bob       = 3 // sales team
	carl      = 4 // gets ADVERTISING leads by rule
	dismissed = 5
)

// bundle is a running intake: real Redis, the fake portal with the app installed,
// routing with a round-robin team and two rules (ADVERTISING to Carl, PARTNER held),
// and the Service's workers.
type bundle struct {
	rdb    redis.UniversalClient
	srv    *bitrixtest.Server
	portal *bitrixtest.Portal
	store  *Store
	svc    *Service
	// members keeps the portal's record and tokens, installed with appToken.
	members *oauth.Store
	engine  *routing.Engine
	logs    *syncBuffer
}

// appToken is the application token the test portal was installed with.
const appToken = "intake-test-application-token"

// setup starts everything on a Redis of redistest.New; start=false leaves the
// workers stopped.
func setup(t *testing.T, start bool) *bundle {
	t.Helper()
	return setupOn(t, redistest.New(t), start)
}

// setupOn starts everything on rdb.
func setupOn(t *testing.T, rdb redis.UniversalClient, start bool) *bundle {
	t.Helper()
	ctx := context.Background()
	b := &bundle{rdb: rdb, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.srv = bitrixtest.Start(t, bitrixtest.Options{Rate: -1})
	b.portal = b.srv.NewPortal(bitrixtest.PortalOptions{Users: []bitrixtest.User{
		{ID: admin, Name: "Ada", Admin: true},
		{ID: ann, Name: "Ann", LastName: "Lee"},
		{ID: bob, Name: "Bob", LastName: "Stone"},
		{ID: carl, Name: "Carl", LastName: "Diaz"},
		{ID: dismissed, Name: "Dora", Dismissed: true},
	}})
	members := oauth.NewStore(b.rdb, oauth.Config{ClientID: b.srv.ClientID(),
		ClientSecret: b.srv.ClientSecret(), OAuthURL: b.srv.OAuthURL()}, log)
	b.members = members
	b.install(t)
	engine := routing.NewEngine(b.rdb, log)
	b.engine = engine
	settings := &routing.Settings{
		Teams: []routing.Team{{ID: "sales", Name: "Sales", Strategy: routing.RoundRobin,
			Members: []routing.Member{{UserID: ann}, {UserID: bob}}}},
		Rules: []routing.Rule{{ID: "ads", Name: "Ads to Carl",
			Conditions: []routing.Condition{{Field: "SOURCE_ID", Op: routing.OpEquals,
				Value: "ADVERTISING"}},
			Target: routing.Target{Kind: routing.TargetPerson, User: carl}},
			{ID: "partners", Name: "Partners wait",
				Conditions: []routing.Condition{{Field: "SOURCE_ID", Op: routing.OpEquals,
					Value: "PARTNER"}},
				Target: routing.Target{Kind: routing.TargetHold}}},
		Default: routing.Target{Kind: routing.TargetTeam, Team: "sales"},
	}
	if _, err := engine.SaveSettings(ctx, b.portal.MemberID(), settings, admin); err != nil {
		t.Fatalf("SaveSettings() error = %v", err)
	}
	client := func(memberID string) *bitrix.Client {
		// No retries inside a call: the workers' own retries are under test.
		return bitrix.NewClient(memberID, members.Auth(memberID),
			bitrix.Options{MaxRetries: -1, Timeout: 5 * time.Second, Logger: log})
	}
	router := &EngineRouter{Engine: engine, Clients: client, RDB: b.rdb}
	b.store = NewStore(b.rdb)
	b.svc = New(b.rdb, func(m string) Caller { return client(m) }, router, Config{
		PollInterval: 20 * time.Millisecond, ClaimIdle: 100 * time.Millisecond,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		MaxAttempts: 1000,
	}, log)
	if start {
		b.svc.Start(ctx)
	}
	t.Cleanup(func() {
		b.svc.Stop(context.Background())
		b.checkLogs(t)
	})
	return b
}

// install records the test portal as installed, with appToken and a fresh token
// pair of the administrator.
func (b *bundle) install(t *testing.T) {
	t.Helper()
	tok := b.portal.Tokens(admin)
	_, err := b.members.SaveInstall(context.Background(), oauth.Install{
		MemberID: b.portal.MemberID(), Domain: b.portal.Domain(),
		ClientEndpoint: b.portal.ClientEndpoint(), ServerEndpoint: b.srv.OAuthURL() + "/rest/",
		Scope: "crm,user,im,timeman", InstalledBy: admin, Installed: true,
		ApplicationToken: appToken,
		Tokens: oauth.Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
			Expiry: tok.Expires, UserID: admin},
	})
	if err != nil {
		t.Fatalf("SaveInstall() error = %v", err)
	}
}

// source creates an intake source of the test portal.
func (b *bundle) source(t *testing.T, opts Options) *Source {
	t.Helper()
	src, _, err := b.store.Create(context.Background(), b.portal.MemberID(), "Landing", opts)
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	return src
}

// accept parses body as JSON and accepts it for src.
func (b *bundle) accept(t *testing.T, src *Source, body, key string) *Receipt {
	t.Helper()
	post, err := Parse("application/json", []byte(body))
	if err != nil {
		t.Fatalf("Parse(%s) error = %v", body, err)
	}
	rc, err := b.svc.Accept(context.Background(), src, post, key)
	if err != nil {
		t.Fatalf("Accept() error = %v", err)
	}
	return rc
}

// settled waits until the post is no longer pending.
func (b *bundle) settled(t *testing.T, src *Source, intakeID string) *Receipt {
	t.Helper()
	rc, err := b.svc.Wait(context.Background(), src, intakeID, 10*time.Second)
	if err != nil {
		t.Fatalf("Wait() error = %v", err)
	}
	if rc.State == Pending {
		t.Fatalf("post %s still pending after 10s", intakeID)
	}
	return rc
}

// lead returns the fake portal's lead id.
func (b *bundle) lead(t *testing.T, id int64) map[string]any {
	t.Helper()
	l, ok := b.portal.Lead(int(id))
	if !ok {
		t.Fatalf("portal has no lead %d", id)
	}
	return l
}

// piiMarkers are the personal details the tests post; none may reach a log.
var piiMarkers = []string{"Anna", "Petrova", "anna@example.com", "345-67-89", "Call after"}

func (b *bundle) checkLogs(t *testing.T) {
	t.Helper()
	logs := b.logs.String()
	for _, m := range piiMarkers {
		if strings.Contains(logs, m) {
			t.Errorf("log contains personal detail %q:\n%s", m, logs)
		}
	}
}

// owner is the lead's ASSIGNED_BY_ID.
func owner(l map[string]any) int64 {
	n, _ := strconv.ParseInt(fmt.Sprint(l["ASSIGNED_BY_ID"]), 10, 64)
	return n
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
