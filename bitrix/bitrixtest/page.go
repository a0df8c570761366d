package bitrixtest

import (
	"embed"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed page/*.html
var pageFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
	"ts":   func(t time.Time) string { return t.Format("15:04:05.000") },
}).ParseFS(pageFiles, "page/*.html"))

// DemoPortal creates a portal named "demo" with a small sales team, the way
// `go run ./app fakeportal` shows it: an administrator, three sales reps in two
// departments (one absent, one on a break), a dismissed one, and a custom lead field.
func (s *Server) DemoPortal() *Portal {
	return s.NewPortal(PortalOptions{
		Name: "demo",
		Departments: []Department{
			{ID: 2, Name: "Sales", Head: 2}, {ID: 3, Name: "Key accounts", Parent: 2, Head: 4},
		},
		Users: []User{
			{ID: 1, Name: "Anna", LastName: "Admin", Admin: true, Timeman: "OPENED"},
			{ID: 2, Name: "Boris", LastName: "Petrov", Department: 2, Timeman: "OPENED"},
			{ID: 3, Name: "Clara", LastName: "Schmidt", Department: 2, Timeman: "PAUSED"},
			{ID: 4, Name: "Dmitri", LastName: "Ivanov", Department: 3,
				AbsentUntil: time.Now().Add(72 * time.Hour)},
			{ID: 5, Name: "Eva", LastName: "Novak", Department: 2, Dismissed: true},
		},
		UserFields: []UserField{{Code: "UF_CRM_REGION", Type: "string", Title: "Region"}},
	})
}

// serveIndex lists the portals and lets a person create one.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		p := s.NewPortal(PortalOptions{Name: r.FormValue("name")})
		http.Redirect(w, r, "/portal/"+p.Name()+"/", http.StatusSeeOther)
		return
	}
	type row struct{ Name, MemberID, Endpoint string }
	var rows []row
	for _, p := range s.Portals() {
		rows = append(rows, row{p.Name(), p.MemberID(), p.ClientEndpoint()})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	render(w, "index.html", map[string]any{
		"Portals": rows, "OAuth": s.OAuthURL() + "/oauth/token/", "ClientID": s.ClientID(),
	})
}

// servePortalPage shows a portal and takes the page's form posts.
func (s *Server) servePortalPage(w http.ResponseWriter, r *http.Request, p *Portal, tail string) {
	switch {
	case tail == "" && r.Method == http.MethodGet:
		s.portalPage(w, p)
	case strings.HasPrefix(tail, "ui/") && r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		if tail == "ui/tokens" {
			s.tokensPage(w, r, p)
			return
		}
		if msg := portalAction(p, strings.TrimPrefix(tail, "ui/"), r); msg != "" {
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/portal/"+p.Name()+"/", http.StatusSeeOther)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) portalPage(w http.ResponseWriter, p *Portal) {
	leads := p.Leads()
	if len(leads) > 50 {
		leads = leads[len(leads)-50:]
	}
	deliveries := p.Deliveries()
	if len(deliveries) > 50 {
		deliveries = deliveries[len(deliveries)-50:]
	}
	for i, j := 0, len(deliveries)-1; i < j; i, j = i+1, j-1 {
		deliveries[i], deliveries[j] = deliveries[j], deliveries[i]
	}
	events, placements := p.Bindings()
	app := p.appSnapshot()
	appView := map[string]any{"Registered": app.registered, "Installed": app.installed,
		"HandlerURL": app.HandlerURL, "InstallURL": app.InstallURL, "Scope": app.Scope,
		"Frame": s.url + "/frame/" + p.MemberID() + "/app?user="}
	render(w, "portal.html", map[string]any{
		"Name": p.Name(), "MemberID": p.MemberID(), "Endpoint": p.ClientEndpoint(),
		"App": appView, "Users": p.Users(), "Leads": leads, "Deliveries": deliveries,
		"Events": events, "Placements": placements, "Requests": p.RequestCount(),
		"Offline": p.OfflineEvents(),
	})
}

// portalAction runs one form post of the portal page; it returns a message for bad input.
func portalAction(p *Portal, action string, r *http.Request) string {
	num := func(name string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(r.PostFormValue(name)))
		return n
	}
	switch action {
	case "user":
		if strings.TrimSpace(r.PostFormValue("name")) == "" {
			return "a user needs a name"
		}
		p.AddUser(User{Name: r.PostFormValue("name"), LastName: r.PostFormValue("last_name"),
			Admin: r.PostFormValue("admin") != "", Department: num("department")})
	case "lead":
		fields := map[string]any{"TITLE": r.PostFormValue("title"),
			"NAME": r.PostFormValue("name"), "SOURCE_ID": r.PostFormValue("source")}
		if v := r.PostFormValue("phone"); v != "" {
			fields["PHONE"] = []map[string]any{{"VALUE": v, "VALUE_TYPE": "WORK"}}
		}
		if v := r.PostFormValue("email"); v != "" {
			fields["EMAIL"] = []map[string]any{{"VALUE": v, "VALUE_TYPE": "WORK"}}
		}
		if n := num("assigned"); n > 0 {
			fields["ASSIGNED_BY_ID"] = n
		}
		p.AddLead(num("by"), fields)
	case "lead-update":
		if _, ok := p.Lead(num("id")); !ok {
			return "no lead with that ID"
		}
		fields := map[string]any{}
		if n := num("assigned"); n > 0 {
			fields["ASSIGNED_BY_ID"] = n
		}
		if v := r.PostFormValue("status"); v != "" {
			fields["STATUS_ID"] = v
		}
		p.UpdateLead(num("by"), num("id"), fields)
	case "app":
		if r.PostFormValue("handler") == "" {
			return "the app needs a handler URL"
		}
		p.RegisterApp(App{HandlerURL: r.PostFormValue("handler"),
			InstallURL: r.PostFormValue("install"), Scope: r.PostFormValue("scope")})
	case "finish-install":
		if err := p.FinishInstall(num("user")); err != nil {
			return err.Error()
		}
	case "expire-tokens":
		p.ExpireAccessTokens()
	case "uninstall":
		p.Uninstall(r.PostFormValue("clean") != "")
	default:
		return "unknown action"
	}
	return ""
}

func render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, "page failed", http.StatusInternalServerError)
	}
}

// tokensPage issues a token pair for a user of the portal and shows it, so that a
// developer can call the REST API by hand.
func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, p *Portal) {
	id, _ := strconv.Atoi(strings.TrimSpace(r.PostFormValue("user")))
	if !p.userActive(id) {
		http.Error(w, "no active user with that ID", http.StatusBadRequest)
		return
	}
	tok := p.Tokens(id)
	render(w, "tokens.html", map[string]any{
		"Name": p.Name(), "User": id, "Token": tok, "Endpoint": p.ClientEndpoint(),
		"OAuth": s.OAuthURL() + "/oauth/token/", "ClientID": s.ClientID(),
	})
}
