package bitrix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
)

// portalAuth is a bitrix.Auth over tokens the fake portal issued: it refreshes
// them at the fake OAuth server, as package oauth does at the real one.
type portalAuth struct {
	srv *bitrixtest.Server

	mu        sync.Mutex // guards the fields below
	creds     bitrix.Credentials
	refresh   string
	refreshes int
	moved     []string
	issued    []string // every access and refresh token, to look for in logs
}

func newPortalAuth(srv *bitrixtest.Server, p *bitrixtest.Portal) *portalAuth {
	tok := p.Tokens(1)
	return &portalAuth{
		srv:     srv,
		creds:   bitrix.Credentials{Endpoint: p.ClientEndpoint(), AccessToken: tok.AccessToken},
		refresh: tok.RefreshToken,
		issued:  []string{tok.AccessToken, tok.RefreshToken},
	}
}

func (a *portalAuth) Credentials(context.Context) (bitrix.Credentials, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.creds, nil
}

func (a *portalAuth) Refresh(ctx context.Context, stale bitrix.Credentials) (bitrix.Credentials, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.creds.AccessToken != stale.AccessToken {
		return a.creds, nil // refreshed by a concurrent request
	}
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {a.srv.ClientID()},
		"client_secret": {a.srv.ClientSecret()},
		"refresh_token": {a.refresh},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.srv.OAuthURL()+"/oauth/token/",
		strings.NewReader(form.Encode()))
	if err != nil {
		return bitrix.Credentials{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return bitrix.Credentials{}, err
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		return bitrix.Credentials{}, err
	}
	if tok.Error != "" || tok.AccessToken == "" {
		return bitrix.Credentials{}, fmt.Errorf("refresh: %s", tok.Error)
	}
	a.refreshes++
	a.creds.AccessToken, a.refresh = tok.AccessToken, tok.RefreshToken
	a.issued = append(a.issued, tok.AccessToken, tok.RefreshToken)
	return a.creds, nil
}

func (a *portalAuth) Moved(_ context.Context, endpoint string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.moved = append(a.moved, endpoint)
	a.creds.Endpoint = endpoint
	return nil
}

func (a *portalAuth) setToken(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds.AccessToken = token
}

func (a *portalAuth) state() (refreshes int, moved []string, issued []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refreshes, append([]string(nil), a.moved...), append([]string(nil), a.issued...)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bundle is one test's fake portal, its tokens and a client of it.
type bundle struct {
	srv    *bitrixtest.Server
	portal *bitrixtest.Portal
	auth   *portalAuth
	client *bitrix.Client
	logs   *syncBuffer
}

// setup starts a fake portal without a rate limit (unless srvOpts sets one)
// and a client of it; opts.Logger is replaced by a debug log kept in
// bundle.logs.
func setup(t *testing.T, srvOpts bitrixtest.Options, opts bitrix.Options) *bundle {
	t.Helper()
	if srvOpts.Rate == 0 {
		srvOpts.Rate = -1
	}
	srv := bitrixtest.Start(t, srvOpts)
	p := srv.NewPortal(bitrixtest.PortalOptions{Name: "acme"})
	b := &bundle{srv: srv, portal: p, auth: newPortalAuth(srv, p), logs: &syncBuffer{}}
	opts.Logger = slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	b.client = bitrix.NewClient(p.MemberID(), b.auth, opts)
	t.Cleanup(func() { b.checkLogs(t) })
	return b
}

// checkLogs fails the test when a token the portal issued shows up in the log.
func (b *bundle) checkLogs(t *testing.T) {
	t.Helper()
	logs := b.logs.String()
	_, _, issued := b.auth.state()
	for _, tok := range issued {
		if tok != "" && strings.Contains(logs, tok) {
			t.Errorf("log contains a token: %s...", tok[:8])
		}
	}
}

// requests returns the REST requests the portal served, as "method status error".
func (b *bundle) requests() []string {
	var out []string
	for _, r := range b.srv.Requests() {
		if r.Method == "oauth.token" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %d %s", r.Method, r.Status, r.Error))
	}
	return out
}

type lead struct {
	ID         bitrix.ID   `json:"ID"`
	Title      bitrix.Text `json:"TITLE"`
	AssignedBy bitrix.ID   `json:"ASSIGNED_BY_ID"`
}

func TestCallAddAndGetLead(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	ctx := t.Context()

	var id bitrix.ID
	err := b.client.Call(ctx, "crm.lead.add", map[string]any{
		"fields": map[string]any{"TITLE": "Website order", "ASSIGNED_BY_ID": 1},
	}, &id)
	if err != nil {
		t.Fatalf("Call(crm.lead.add) error = %v", err)
	}
	if _, ok := b.portal.Lead(int(id)); !ok {
		t.Fatalf("portal has no lead %d after crm.lead.add", id)
	}

	var got lead
	if err := b.client.Call(ctx, "crm.lead.get", map[string]any{"id": id}, &got); err != nil {
		t.Fatalf("Call(crm.lead.get) error = %v", err)
	}
	want := lead{ID: id, Title: "Website order", AssignedBy: 1}
	if got != want {
		t.Errorf("crm.lead.get = %+v, want %+v", got, want)
	}
}
