package bitrixtest

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestFramePage(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{Lang: "ru", Users: []User{
		{ID: 1, Name: "Anna", Admin: true}, {ID: 2, Name: "Boris"}, {ID: 3, Name: "Gone", Dismissed: true}}})
	p.RegisterApp(App{InstallURL: "http://127.0.0.1:1/install", HandlerURL: "http://127.0.0.1:1/app?x=1"})

	tests := []struct {
		name       string
		user       int
		install    bool
		wantStatus int
		wantAction string
	}{
		{name: "administrator before install gets the installer", user: 1, wantStatus: 200,
			wantAction: "http://127.0.0.1:1/install?"},
		{name: "employee before install is refused", user: 2, wantStatus: http.StatusForbidden},
		{name: "dismissed user is refused", user: 3, wantStatus: http.StatusForbidden},
		{name: "employee after install gets the app", user: 2, install: true, wantStatus: 200,
			wantAction: "http://127.0.0.1:1/app?x=1&"},
	}
	for _, tt := range tests {
		if tt.install && !p.Installed() {
			if err := p.FinishInstall(1); err != nil {
				t.Fatalf("FinishInstall() = %v", err)
			}
		}
		status, body := frameGet(t, p.FrameURL(tt.user))
		if status != tt.wantStatus {
			t.Errorf("%s: GET frame = %d, want %d", tt.name, status, tt.wantStatus)
			continue
		}
		if tt.wantStatus != 200 {
			continue
		}
		action := html.UnescapeString(frameAttr(t, body, `action="([^"]*)"`))
		if !strings.HasPrefix(action, tt.wantAction) {
			t.Errorf("%s: form action = %q, want it to start %q", tt.name, action, tt.wantAction)
		}
		q, _ := url.ParseQuery(action[strings.Index(action, "?")+1:])
		name := frameAttr(t, body, `<iframe id="app-frame" name="([^"]*)"`)
		if want := p.Domain() + "|0|" + q.Get("APP_SID"); name != want || q.Get("LANG") != "ru" {
			t.Errorf("%s: frame name %q and LANG %q, want %q and ru", tt.name, name, q.Get("LANG"), want)
		}
		var cfg struct {
			AppOrigin string         `json:"appOrigin"`
			InitData  map[string]any `json:"initData"`
			Users     []frameUser    `json:"users"`
		}
		raw := frameAttr(t, body, `(?s)<script type="application/json" id="frame-config">(.*?)</script>`)
		if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
			t.Fatalf("%s: frame config is not JSON: %v", tt.name, err)
		}
		if cfg.AppOrigin != "http://127.0.0.1:1" || cfg.InitData["MEMBER_ID"] != p.MemberID() ||
			cfg.InitData["INSTALL"] != !tt.install || len(cfg.Users) != 2 {
			t.Errorf("%s: config origin %q, init %v, %d users", tt.name, cfg.AppOrigin, cfg.InitData, len(cfg.Users))
		}
		if !strings.Contains(body, `name="AUTH_ID" value="`+cfg.InitData["AUTH_ID"].(string)+`"`) {
			t.Errorf("%s: the form and getInitData carry different tokens", tt.name)
		}
	}
}

func TestFrameLeadTab(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	p.RegisterApp(App{HandlerURL: "http://127.0.0.1:1/app"})
	if status, _ := frameGet(t, p.LeadFrameURL(1, 7)); status != http.StatusConflict {
		t.Errorf("lead tab with nothing bound = %d, want 409", status)
	}
}

func frameGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func frameAttr(t *testing.T, body, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page lacks %s", pattern)
	}
	return m[1]
}
