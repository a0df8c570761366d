package bitrixtest

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// outcomes calls profile n times and returns the status/code of each answer.
func outcomes(t *testing.T, p *Portal, tok Token, n int) []string {
	t.Helper()
	var out []string
	for range n {
		a := postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil)
		code := a.code()
		if a.Body == nil {
			code = "html"
		}
		out = append(out, strings.TrimSpace(code+" "+strconv.Itoa(a.Status)))
	}
	return out
}

func TestRESTFaults(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Rate: -1})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	s.SetFaults(Faults{Seed: 42, Error5xx: 0.3, QueryLimit: 0.2, OperationLimit: 0.1})
	first := outcomes(t, p, tok, 60)
	s.SetFaults(Faults{Seed: 42, Error5xx: 0.3, QueryLimit: 0.2, OperationLimit: 0.1})
	second := outcomes(t, p, tok, 60)
	if strings.Join(first, ",") != strings.Join(second, ",") {
		t.Errorf("the same seed gave different faults:\n%v\n%v", first, second)
	}
	seen := map[string]bool{}
	for _, o := range first {
		seen[o] = true
	}
	for _, want := range []string{"INTERNAL_SERVER_ERROR 500", "html 502",
		"QUERY_LIMIT_EXCEEDED 503", "OPERATION_TIME_LIMIT 429", "200"} {
		if !seen[want] {
			t.Errorf("no %q among %v", want, first)
		}
	}
	s.SetFaults(Faults{})
	if got := outcomes(t, p, tok, 5); strings.Join(got, ",") != "200,200,200,200,200" {
		t.Errorf("after switching faults off: %v", got)
	}
}

func TestErrorAfterRunning(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	s.SetFaults(Faults{Seed: 1, Error5xxAfter: 1})
	a := postJSON(t, p.ClientEndpoint(), "crm.lead.add", tok.AccessToken,
		map[string]any{"fields": map[string]any{"TITLE": "ghost"}})
	if a.Status != 500 {
		t.Errorf("crm.lead.add = %d, want 500", a.Status)
	}
	if p.LeadCount() != 1 {
		t.Errorf("leads = %d, want the lead created despite the 500", p.LeadCount())
	}
}

func TestSlowAnswers(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	s.SetFaults(Faults{Seed: 1, Slow: 1, SlowBy: 30 * time.Millisecond})
	start := time.Now()
	postJSON(t, p.ClientEndpoint(), "profile", tok.AccessToken, nil)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("slow answer took %v, want at least 30ms", d)
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	before := in.srv.RequestCount()
	postJSON(t, in.portal.ClientEndpoint(), "crm.lead.list", in.tok.AccessToken, nil)
	postJSON(t, in.portal.ClientEndpoint(), "crm.lead.get", "", nil)
	refresh(t, in.srv, in.tok.RefreshToken, false)
	if got := in.srv.RequestCount() - before; got != 3 {
		t.Errorf("RequestCount grew by %d, want 3", got)
	}
	reqs := in.srv.Requests()
	tail := reqs[len(reqs)-3:]
	want := []Request{
		{MemberID: in.portal.MemberID(), Method: "crm.lead.list", Status: 200},
		{MemberID: in.portal.MemberID(), Method: "crm.lead.get", Status: 401,
			Error: "NO_AUTH_FOUND"},
		{MemberID: in.portal.MemberID(), Method: "oauth.token", Status: 200},
	}
	for i, w := range want {
		g := tail[i]
		if g.MemberID != w.MemberID || g.Method != w.Method || g.Status != w.Status ||
			g.Error != w.Error || g.At.IsZero() {
			t.Errorf("request %d = %+v, want %+v", i, g, w)
		}
	}
}
