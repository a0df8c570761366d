package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
)

// env is a fake Bitrix24, a real Redis, and the application's lifecycle behind
// an HTTP receiver for the events the portal POSTs.
type env struct {
	srv   *bitrixtest.Server
	rdb   redis.UniversalClient
	store *oauth.Store
	lc    *lifecycle.Lifecycle
	app   string // the application's public URL
}

func setup(t *testing.T, faults bitrixtest.Faults) *env {
	t.Helper()
	srv := bitrixtest.Start(t, bitrixtest.Options{Rate: -1})
	srv.SetFaults(faults)
	rdb := redistest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := oauth.NewStore(rdb, oauth.Config{ClientID: srv.ClientID(), ClientSecret: srv.ClientSecret(),
		OAuthURL: srv.OAuthURL(), LockPoll: 5 * time.Millisecond}, log)
	e := &env{srv: srv, rdb: rdb, store: store}
	app := httptest.NewServer(http.HandlerFunc(e.receive))
	t.Cleanup(app.Close)
	e.app = app.URL
	e.lc = lifecycle.New(rdb, store, lifecycle.Config{PublicURL: app.URL, PendingAfter: time.Nanosecond}, log)
	return e
}

// receive is the application's /events as far as lifecycle events go: parse,
// hand to the lifecycle, answer 200, or 403 for an event it refused.
func (e *env) receive(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/events" || r.ParseForm() != nil {
		http.NotFound(w, r)
		return
	}
	ev, err := bitrix.ParseEvent(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ev.Name != bitrix.EventAppInstall && ev.Name != bitrix.EventAppUpdate && ev.Name != bitrix.EventAppUninstall {
		return
	}
	err = e.lc.HandleAppEvent(r.Context(), ev)
	switch {
	case errors.Is(err, oauth.ErrForbidden):
		http.Error(w, "forbidden", http.StatusForbidden)
	case err != nil:
		http.Error(w, "failed", http.StatusInternalServerError)
	}
}

// newPortal makes a portal with an administrator (1) and a sales rep (2) and
// registers the application on it with its install page.
func (e *env) newPortal(t *testing.T, name string) *bitrixtest.Portal {
	t.Helper()
	p := e.srv.NewPortal(bitrixtest.PortalOptions{Name: name, Users: []bitrixtest.User{
		{ID: 1, Name: "Ann", LastName: "Admin", Admin: true},
		{ID: 2, Name: "Rob", LastName: "Rep"},
	}})
	e.register(p)
	return p
}

func (e *env) register(p *bitrixtest.Portal) {
	p.RegisterApp(bitrixtest.App{InstallURL: e.app + "/install", HandlerURL: e.app + "/app"})
}

// install runs the install page as the administrator opens it.
func (e *env) install(t *testing.T, p *bitrixtest.Portal) *lifecycle.InstallResult {
	t.Helper()
	q, f := p.OpenForm(1, "DEFAULT", nil)
	res, err := e.lc.Install(context.Background(), q, f)
	if err != nil {
		t.Fatalf("Install() = %v", err)
	}
	return res
}

// waitFor polls the portal's record until cond holds.
func (e *env) waitFor(t *testing.T, memberID, what string, cond func(*oauth.Portal) bool) *oauth.Portal {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := e.store.Portal(context.Background(), memberID)
		if err == nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("portal %s never became %s: last %+v, %v", memberID, what, p, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) waitStatus(t *testing.T, memberID, status string) *oauth.Portal {
	t.Helper()
	return e.waitFor(t, memberID, status, func(p *oauth.Portal) bool { return p.Status == status })
}

// binding is one binding as the fake portal holds it, for comparison.
type binding struct {
	Kind, Name, Handler string
}

// bindings returns the portal's bindings, sorted.
func bindings(p *bitrixtest.Portal) []binding {
	events, places := p.Bindings()
	var out []binding
	for _, ev := range events {
		kind := "online"
		if ev.Offline {
			kind = "offline"
		}
		out = append(out, binding{kind, ev.Event, ev.Handler})
	}
	for _, pl := range places {
		out = append(out, binding{"placement", pl.Placement, pl.Handler})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Handler < b.Handler
	})
	return out
}

// wantBindings is everything LeadRouter binds, sorted like bindings.
func (e *env) wantBindings() []binding {
	h := e.app + "/events"
	return []binding{
		{"offline", "ONCRMLEADADD", ""},
		{"online", "ONAPPINSTALL", h},
		{"online", "ONAPPUNINSTALL", h},
		{"online", "ONAPPUPDATE", h},
		{"online", "ONCRMLEADADD", h},
		{"online", "ONCRMLEADUPDATE", h},
		{"placement", "CRM_LEAD_DETAIL_TAB", e.app + "/placement/lead-tab"},
	}
}

func (e *env) checkBindings(t *testing.T, p *bitrixtest.Portal) {
	t.Helper()
	if diff := cmp.Diff(e.wantBindings(), bindings(p)); diff != "" {
		t.Errorf("portal bindings mismatch (-want +got):\n%s", diff)
	}
}

// waitBindings waits until the portal holds every binding.
func (e *env) waitBindings(t *testing.T, p *bitrixtest.Portal) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cmp.Equal(e.wantBindings(), bindings(p)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	e.checkBindings(t, p)
}

// works reports an error unless the portal's stored tokens still reach it.
func (e *env) works(memberID string) error {
	var out struct {
		ID bitrix.ID `json:"ID"`
	}
	return e.store.Client(memberID).Call(context.Background(), "profile", nil, &out)
}

// countRequests counts the REST requests (batch commands included) of a method.
func (e *env) countRequests(memberID, method string) int {
	n := 0
	for _, r := range e.srv.Requests() {
		if r.MemberID != memberID {
			continue
		}
		if r.Method == method {
			n++
		}
		for _, m := range r.Batch {
			if m == method {
				n++
			}
		}
	}
	return n
}

// allKeys returns the keys matching pattern on the node, or on every master of a
// cluster.
func allKeys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var mu sync.Mutex // guards keys
	var keys []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		ks, err := node.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
