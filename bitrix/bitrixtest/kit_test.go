package bitrixtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer is a decoded HTTP answer.
type answer struct {
	Status int
	Header http.Header
	Raw    string
	Body   map[string]any
}

func (a answer) code() string { s, _ := a.Body["error"].(string); return s }

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return a
}

// postJSON calls a REST method with a JSON body.
func postJSON(t *testing.T, endpoint, method, token string, params map[string]any) answer {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if token != "" {
		params["auth"] = token
	}
	data, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, endpoint+method, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// postForm POSTs a raw form body.
func postForm(t *testing.T, target, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// receiver is an app's event endpoint that records what the portal POSTs.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

type received struct {
	contentType string
	body        string
	form        url.Values
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Get("Content-Type"), string(raw), form})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/events" }

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// installed is a portal with the app installed, bound to a receiver, and the
// installing administrator's tokens.
type installed struct {
	srv    *Server
	portal *Portal
	rc     *receiver
	tok    Token
}

func setup(t *testing.T, opts Options, events ...string) installed {
	t.Helper()
	srv := Start(t, opts)
	p := srv.NewPortal(PortalOptions{Name: "acme", Users: []User{
		{ID: 1, Name: "Anna", LastName: "Admin", Admin: true},
		{ID: 2, Name: "Boris", LastName: "Sales", Department: 5},
		{ID: 3, Name: "Clara", LastName: "Gone", Dismissed: true},
	}})
	rc := newReceiver(t)
	p.RegisterApp(App{InstallURL: rc.srv.URL + "/install", HandlerURL: rc.srv.URL + "/app"})
	_, body := p.OpenForm(1, "DEFAULT", nil)
	tok := Token{AccessToken: body.Get("AUTH_ID"), RefreshToken: body.Get("REFRESH_ID"), UserID: 1}
	for _, ev := range events {
		a := postJSON(t, p.ClientEndpoint(), "event.bind", tok.AccessToken,
			map[string]any{"event": ev, "handler": rc.url()})
		if a.Status != 200 {
			t.Fatalf("event.bind %s = %d %s", ev, a.Status, a.Raw)
		}
	}
	if err := p.FinishInstall(1); err != nil {
		t.Fatalf("FinishInstall: %v", err)
	}
	return installed{srv: srv, portal: p, rc: rc, tok: tok}
}

func waitDeliveries(t *testing.T, p *Portal, n int) []Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitDeliveries(ctx, n); err != nil {
		t.Fatal(err)
	}
	return p.Deliveries()
}

// newBenchReceiver starts an event endpoint that answers 200 and discards the body.
func newBenchReceiver(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/events"
}

func benchPost(target, token string, params map[string]any) error {
	params["auth"] = token
	data, _ := json.Marshal(params)
	resp, err := http.Post(target, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
