package handlers_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/routing"
)

func TestSettingsPage(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)

	pg := s.openPage(p, anna.ID, "/app", "DEFAULT", nil)
	if pg.status != http.StatusOK {
		t.Fatalf("POST /app = %d: %.300s", pg.status, pg.body)
	}
	csp := pg.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'nonce-", "frame-ancestors 'self' " + s.fake.URL(),
		"default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, want)
		}
	}
	if xfo := pg.header.Get("X-Frame-Options"); xfo != "" {
		t.Errorf("X-Frame-Options = %q, want none: the portal frames the page", xfo)
	}
	cfg := pg.config(t)
	if cfg["admin"] != true || cfg["lang"] != "en" || cfg["portal_url"] != s.fake.URL() {
		t.Errorf("page config admin=%v lang=%v portal_url=%v, want true, en, %s",
			cfg["admin"], cfg["lang"], cfg["portal_url"], s.fake.URL())
	}
	if !strings.Contains(pg.body, "Assignment log") || !strings.Contains(pg.body, "Anna Admin") {
		t.Errorf("page lacks the English tabs or the user's name")
	}

	t.Run("russian", func(t *testing.T) {
		ru := s.newPortal("ru")
		s.install(ru)
		pg := s.openPage(ru, anna.ID, "/app", "DEFAULT", nil)
		if !strings.Contains(pg.body, "Журнал назначений") || pg.config(t)["lang"] != "ru" {
			t.Errorf("Russian portal's page is not in Russian: %.300s", pg.body)
		}
	})

	t.Run("head", func(t *testing.T) {
		for _, path := range []string{"/app", "/placement/lead-tab", "/install"} {
			resp, err := http.Head(s.app.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("HEAD %s = %d, want 200 (the marketplace checks handler URLs so)", path, resp.StatusCode)
			}
		}
	})

	t.Run("unverified", func(t *testing.T) {
		resp, err := http.PostForm(s.app.URL+"/app?LANG=ru", map[string][]string{
			"member_id": {p.MemberID()}, "AUTH_ID": {"forged"}, "DOMAIN": {"evil.example"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged page request = %d, want 403", resp.StatusCode)
		}
	})
}

func TestSettingsSave(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	token := s.session(p, anna.ID)

	var got struct {
		Settings *routing.Settings `json:"settings"`
		Version  int               `json:"version"`
		People   []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"people"`
	}
	if code := s.call(token, "GET", "/api/settings", nil, &got); code != 200 || got.Version != 0 {
		t.Fatalf("GET /api/settings = %d, version %d; want 200 and 0", code, got.Version)
	}

	var saved struct{ Version int }
	body := map[string]any{"settings": salesTeam(), "base_version": 0}
	if code := s.call(token, "PUT", "/api/settings", body, &saved); code != 200 || saved.Version != 1 {
		t.Fatalf("PUT /api/settings = %d, version %d; want 200 and 1", code, saved.Version)
	}

	t.Run("stale base version", func(t *testing.T) {
		body := map[string]any{"settings": salesTeam(), "base_version": 0}
		if code := s.call(token, "PUT", "/api/settings", body, nil); code != http.StatusConflict {
			t.Errorf("save over a newer version = %d, want 409", code)
		}
	})

	t.Run("invalid fields named by path", func(t *testing.T) {
		bad := salesTeam()
		bad.Teams[0].Name = " "
		bad.Teams[0].Members[1].Weight = 500
		bad.Rules[0].Conditions[0].Value = ""
		var answer struct {
			Error  string            `json:"error"`
			Fields map[string]string `json:"fields"`
		}
		code := s.call(token, "PUT", "/api/settings", map[string]any{"settings": bad, "base_version": 1}, &answer)
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("invalid save = %d, want 422", code)
		}
		for _, path := range []string{"teams[0].name", "teams[0].members[1].weight",
			"rules[0].conditions[0].value"} {
			if answer.Fields[path] == "" {
				t.Errorf("fields = %v, want a message for %s", answer.Fields, path)
			}
		}
		var now struct{ Version int }
		s.call(token, "GET", "/api/settings", nil, &now)
		if now.Version != 1 {
			t.Errorf("version after a refused save = %d, want 1", now.Version)
		}
	})

	t.Run("bad json", func(t *testing.T) {
		if code := s.call(token, "PUT", "/api/settings", map[string]any{"settings": 5}, nil); code != 400 {
			t.Errorf("settings of the wrong type = %d, want 400", code)
		}
	})

	t.Run("versions, diff and rollback", func(t *testing.T) {
		second := salesTeam()
		second.Teams[0].Name = "Inside sales"
		second.Teams[0].Members[0].Weight = 3
		s.call(token, "PUT", "/api/settings", map[string]any{"settings": second, "base_version": 1}, nil)

		var diff struct {
			Changes []struct{ Label, Before, After string } `json:"changes"`
		}
		if code := s.call(token, "GET", "/api/versions/2", nil, &diff); code != 200 {
			t.Fatalf("GET /api/versions/2 = %d", code)
		}
		var lines []string
		for _, c := range diff.Changes {
			lines = append(lines, fmt.Sprintf("%s: %s → %s", c.Label, c.Before, c.After))
		}
		joined := strings.Join(lines, "\n")
		for _, want := range []string{`Team "Inside sales" › Name: Sales → Inside sales`,
			`Team "Inside sales" › Boris Petrov › Weight: 1 → 3`} {
			if !strings.Contains(joined, want) {
				t.Errorf("diff =\n%s\nwant a line %q", joined, want)
			}
		}

		var rolled struct{ Version int }
		code := s.call(token, "POST", "/api/versions/1/rollback", nil, &rolled)
		if code != 200 || rolled.Version != 3 {
			t.Fatalf("rollback = %d, version %d; want 200 and 3", code, rolled.Version)
		}
		s.call(token, "GET", "/api/settings", nil, &got)
		if got.Settings.Teams[0].Name != "Sales" {
			t.Errorf("team after rollback = %q, want Sales", got.Settings.Teams[0].Name)
		}
		var versions []struct {
			Version    int    `json:"version"`
			Current    bool   `json:"current"`
			RollbackOf int    `json:"rollback_of"`
			AuthorName string `json:"author_name"`
		}
		s.call(token, "GET", "/api/versions", nil, &versions)
		if len(versions) != 3 || !versions[0].Current || versions[0].RollbackOf != 1 ||
			versions[0].AuthorName != "Anna Admin" {
			t.Errorf("versions = %+v, want 3, the newest current, a return to v1 by Anna Admin", versions)
		}
		if code := s.call(token, "POST", "/api/versions/99/rollback", nil, nil); code != 404 {
			t.Errorf("rollback to a version never saved = %d, want 404", code)
		}
	})
}

func TestSettingsAccess(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("en")
	s.install(p)
	admin := s.session(p, anna.ID)

	if pg := s.openPage(p, boris.ID, "/app", "DEFAULT", nil); pg.status != http.StatusForbidden {
		t.Fatalf("page for a user the administrator did not allow = %d, want 403", pg.status)
	}
	allow := map[string]any{"readers": []int{boris.ID}}
	if code := s.call(admin, "PUT", "/api/access", allow, nil); code != 200 {
		t.Fatalf("PUT /api/access = %d", code)
	}
	reader := s.session(p, boris.ID)

	tests := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"reads settings", "GET", "/api/settings", nil, 200},
		{"reads the log", "GET", "/api/log", nil, 200},
		{"cannot save", "PUT", "/api/settings", map[string]any{"settings": salesTeam()}, 403},
		{"cannot roll back", "POST", "/api/versions/1/rollback", nil, 403},
		{"cannot change access", "PUT", "/api/access", map[string]any{"readers": []int{2, 3}}, 403},
		{"cannot rotate intake secrets", "POST", "/api/intake/x/rotate", nil, 403},
		{"no token", "GET", "/api/settings", nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := reader
			if tt.name == "no token" {
				token = ""
			}
			if code := s.call(token, tt.method, tt.path, tt.body, nil); code != tt.want {
				t.Errorf("%s %s as a reader = %d, want %d", tt.method, tt.path, code, tt.want)
			}
		})
	}

	t.Run("access withdrawn", func(t *testing.T) {
		s.call(admin, "PUT", "/api/access", map[string]any{"readers": []int{}}, nil)
		if code := s.call(reader, "GET", "/api/settings", nil, nil); code != 403 {
			t.Errorf("reader after access was withdrawn = %d, want 403", code)
		}
	})
}

func TestSettingsPortalIsolation(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	a, b := s.newPortal("en"), s.newPortal("en")
	s.install(a)
	s.install(b)
	tokenA, tokenB := s.session(a, anna.ID), s.session(b, anna.ID)

	secret := salesTeam()
	secret.Teams[0].Name = "Portal B only"
	if code := s.call(tokenB, "PUT", "/api/settings", map[string]any{"settings": secret}, nil); code != 200 {
		t.Fatalf("save on portal B = %d", code)
	}
	var got struct {
		Settings *routing.Settings `json:"settings"`
		Version  int               `json:"version"`
	}
	s.call(tokenA, "GET", "/api/settings", nil, &got)
	if got.Version != 0 || len(got.Settings.Teams) != 0 {
		t.Errorf("portal A's session reads version %d with %d teams, want its own empty settings",
			got.Version, len(got.Settings.Teams))
	}
	var versions []any
	s.call(tokenA, "GET", "/api/versions", nil, &versions)
	if len(versions) != 0 {
		t.Errorf("portal A's session lists %d versions, want none", len(versions))
	}
	if code := s.call(tokenA, "GET", "/api/versions/1", nil, nil); code != 404 {
		t.Errorf("portal A's session reading version 1 = %d, want 404 (B's is not visible)", code)
	}

	// A's token edited to name portal B fails its signature.
	forged := retarget(t, tokenA, a.MemberID(), b.MemberID())
	if code := s.call(forged, "GET", "/api/settings", nil, nil); code != 401 {
		t.Errorf("edited token = %d, want 401", code)
	}
}

// retarget rewrites the portal a session token names, keeping its signature.
func retarget(t *testing.T, token, from, to string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode token payload: %v", err)
	}
	edited := strings.Replace(string(payload), from, to, 1)
	if edited == string(payload) {
		t.Fatalf("token payload does not name portal %s", from)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(edited))
	return strings.Join(parts, ".")
}

func TestSettingsErrorsInRussian(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	p := s.newPortal("ru")
	s.install(p)
	token := s.session(p, anna.ID)
	bad := salesTeam()
	bad.Teams[0].Members[0].Weight = 500
	bad.Rules[0].Conditions[0].Op = "unknown"
	var answer struct {
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	}
	s.call(token, "PUT", "/api/settings", map[string]any{"settings": bad}, &answer)
	want := map[string]string{
		"teams[0].members[0].weight": "Вес — целое число от 1 до 100.",
		"rules[0].conditions[0].op":  "Выберите способ сравнения.",
	}
	for path, msg := range want {
		if answer.Fields[path] != msg {
			t.Errorf("fields[%s] = %q, want %q", path, answer.Fields[path], msg)
		}
	}
	if answer.Message != "Настройки не сохранены." {
		t.Errorf("message = %q, want the Russian one", answer.Message)
	}
}
