package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/handlers"
)

// pageReply is an answer to a page request.
type pageReply struct {
	status int
	body   string
	header http.Header
}

// postPage POSTs a form and returns the answer.
func postPage(t *testing.T, target string, form url.Values) pageReply {
	t.Helper()
	resp, err := http.PostForm(target, form)
	if err != nil {
		t.Fatalf("POST %s: %v", target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return pageReply{status: resp.StatusCode, body: string(raw), header: resp.Header}
}

func TestRequireSession(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	acme, other := s.newPortal("en"), s.newPortal("en")
	s.install(acme)
	s.install(other)
	sessions := s.store.Sessions()
	r := gin.New()
	r.GET("/whoami", handlers.RequireSession(testLogger(t), sessions, s.store), func(c *gin.Context) {
		sess := handlers.SessionFrom(c)
		c.String(http.StatusOK, "%s/%d", sess.MemberID, sess.UserID)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	frame := func(p interface {
		OpenForm(int, string, map[string]any) (url.Values, url.Values)
	}, user int) string {
		q, f := p.OpenForm(user, "DEFAULT", nil)
		u, err := s.store.VerifyFrame(context.Background(), q, f)
		if err != nil {
			t.Fatalf("VerifyFrame() = %v", err)
		}
		return sessions.Issue(*u)
	}
	acmeToken := frame(acme, boris.ID)
	otherToken := frame(other, anna.ID)
	gone := s.newPortal("en")
	s.install(gone)
	goneToken := frame(gone, anna.ID)
	gone.Uninstall(false)
	waitFor(t, "portal deleted", func() bool {
		rec, err := s.store.Portal(context.Background(), gone.MemberID())
		return err == nil && rec.Status == "deleted"
	})

	tests := []struct {
		name, header string
		wantStatus   int
		wantBody     string
	}{
		{name: "no header", wantStatus: http.StatusUnauthorized},
		{name: "not bearer", header: "Basic " + acmeToken, wantStatus: http.StatusUnauthorized},
		{name: "garbage", header: "Bearer abc", wantStatus: http.StatusUnauthorized},
		{name: "tampered", header: "Bearer " + acmeToken[:len(acmeToken)-2] + "xx", wantStatus: http.StatusUnauthorized},
		{name: "uninstalled portal", header: "Bearer " + goneToken, wantStatus: http.StatusUnauthorized},
		{name: "acme employee", header: "Bearer " + acmeToken, wantStatus: http.StatusOK,
			wantBody: acme.MemberID() + "/2"},
		{name: "other administrator", header: "Bearer " + otherToken, wantStatus: http.StatusOK,
			wantBody: other.MemberID() + "/1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/whoami", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || (tc.wantBody != "" && string(body) != tc.wantBody) {
				t.Errorf("GET /whoami = %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestFrameAncestors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		origins []string
		want    string
	}{
		{name: "none", want: "frame-ancestors 'self'"},
		{name: "portal", origins: []string{"https://acme.bitrix24.com"},
			want: "frame-ancestors 'self' https://acme.bitrix24.com"},
		{name: "with port", origins: []string{"http://127.0.0.1:8443"},
			want: "frame-ancestors 'self' http://127.0.0.1:8443"},
		{name: "empty", origins: []string{""}, want: "frame-ancestors 'self'"},
		{name: "path", origins: []string{"https://acme.bitrix24.com/rest/"}, want: "frame-ancestors 'self'"},
		{name: "directive smuggled", origins: []string{"https://a.b; script-src *"}, want: "frame-ancestors 'self'"},
		{name: "wildcard", origins: []string{"*"}, want: "frame-ancestors 'self'"},
		{name: "javascript", origins: []string{"javascript:alert(1)"}, want: "frame-ancestors 'self'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := handlers.FrameAncestors(tc.origins...); got != tc.want {
				t.Errorf("FrameAncestors(%q) = %q, want %q", tc.origins, got, tc.want)
			}
			if strings.Count(handlers.FrameAncestors(tc.origins...), ";") != 0 {
				t.Errorf("FrameAncestors(%q) adds a directive", tc.origins)
			}
		})
	}
}
