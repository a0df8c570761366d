package bitrixtest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The emulated portal frame: the Bitrix24 page around an application page. It
// renders an iframe named "<host>|<0|1>|<APP_SID>", fills a hidden form with what
// OpenForm gives and POSTs it into the iframe, and then answers the postMessage
// commands of the application's frame SDK (frame_portal.js) the way the portal does:
// init data, resizing, the title, the user and CRM pickers, install finish, auth
// refresh, options and placement calls.
//
// Pages:
//
//	GET  /frame/{member_id}/app?user=N[&lang=xx]      the application's main page
//	GET  /frame/{member_id}/lead/{id}?user=N[&lang=xx] a lead card with the app's tab
//	POST /frame/{member_id}/refresh?user=N             a fresh token pair (refreshAuth)
//	POST /frame/{member_id}/finish?user=N              installFinish
//	GET  /frame/portal.js                              the portal side of the protocol

//go:embed frame_portal.html
var framePageHTML string

//go:embed frame_portal.js
var framePortalJS []byte

var framePage = template.Must(template.New("frame").Parse(framePageHTML))

// frameRoutes registers the frame pages on the server's mux.
func (s *Server) frameRoutes() {
	s.mux.HandleFunc("GET /frame/portal.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(framePortalJS)
	})
	s.mux.HandleFunc("GET /frame/{member}/app", s.serveAppFrame)
	s.mux.HandleFunc("GET /frame/{member}/lead/{id}", s.serveLeadFrame)
	s.mux.HandleFunc("POST /frame/{member}/refresh", s.serveFrameRefresh)
	s.mux.HandleFunc("POST /frame/{member}/finish", s.serveFrameFinish)
}

// FrameURL returns the address of the portal page that shows the application's
// main page to userID, as the user opening it from the applications menu.
func (p *Portal) FrameURL(userID int) string {
	return p.srv.url + "/frame/" + p.memberID + "/app?user=" + strconv.Itoa(userID)
}

// LeadFrameURL returns the address of the lead card of leadID with the
// application's CRM_LEAD_DETAIL_TAB open, as userID sees it.
func (p *Portal) LeadFrameURL(userID, leadID int) string {
	return p.srv.url + "/frame/" + p.memberID + "/lead/" + strconv.Itoa(leadID) +
		"?user=" + strconv.Itoa(userID)
}

// frameField is one hidden input of the portal's form.
type frameField struct{ Name, Value string }

// frameUser is a user as the portal's picker lists them.
type frameUser struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Position string `json:"position,omitempty"`
}

// frameConfig is what frame_portal.js reads.
type frameConfig struct {
	AppOrigin   string         `json:"appOrigin"`
	AppSID      string         `json:"appSid"`
	InitData    map[string]any `json:"initData"`
	RefreshURL  string         `json:"refreshURL"`
	FinishURL   string         `json:"finishURL"`
	Users       []frameUser    `json:"users"`
	Leads       []frameLead    `json:"leads"`
	AppOptions  map[string]any `json:"appOptions"`
	UserOptions map[string]any `json:"userOptions"`
	Texts       frameTexts     `json:"texts"`
}

type frameLead struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
}

type frameTexts struct {
	PickUsers string `json:"pickUsers"`
	PickLeads string `json:"pickLeads"`
	Select    string `json:"select"`
	Cancel    string `json:"cancel"`
}

func frameTextsFor(lang string) frameTexts {
	if lang == "ru" {
		return frameTexts{PickUsers: "Выбор сотрудников", PickLeads: "Выбор лида",
			Select: "Выбрать", Cancel: "Отмена"}
	}
	return frameTexts{PickUsers: "Choose employees", PickLeads: "Choose a lead",
		Select: "Select", Cancel: "Cancel"}
}

// framePortal finds the portal and the user a frame request names.
func (s *Server) framePortal(w http.ResponseWriter, r *http.Request) (*Portal, User, bool) {
	p := s.Portal(r.PathValue("member"))
	if p == nil {
		http.Error(w, "no such portal", http.StatusNotFound)
		return nil, User{}, false
	}
	id, _ := strconv.Atoi(r.URL.Query().Get("user"))
	u, ok := p.User(id)
	if !ok || u.Dismissed {
		http.Error(w, "no such user", http.StatusForbidden)
		return nil, User{}, false
	}
	return p, u, true
}

func (s *Server) serveAppFrame(w http.ResponseWriter, r *http.Request) {
	p, u, ok := s.framePortal(w, r)
	if !ok {
		return
	}
	target, err := p.PageURL("DEFAULT")
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	install := !p.Installed()
	if install && !u.Admin {
		// What the portal shows a non-administrator before the installation is finished.
		http.Error(w, "The application is not fully installed yet. Ask your administrator "+
			"to finish the installation.", http.StatusForbidden)
		return
	}
	s.renderFrame(w, r, p, u, target, "DEFAULT", nil, install)
}

func (s *Server) serveLeadFrame(w http.ResponseWriter, r *http.Request) {
	p, u, ok := s.framePortal(w, r)
	if !ok {
		return
	}
	target, err := p.PageURL("CRM_LEAD_DETAIL_TAB")
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	id := r.PathValue("id")
	options := map[string]any{"ID": id, "URI": "/crm/lead/details/" + id + "/"}
	s.renderFrame(w, r, p, u, target, "CRM_LEAD_DETAIL_TAB", options, false)
}

// renderFrame writes the portal page that opens target in the application frame.
func (s *Server) renderFrame(w http.ResponseWriter, r *http.Request, p *Portal, u User,
	target, placement string, options map[string]any, install bool) {
	query, body := p.OpenForm(u.ID, placement, options)
	if lang := r.URL.Query().Get("lang"); lang != "" {
		query.Set("LANG", lang)
	}
	action, appOrigin, err := frameAction(target, query)
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	var fields []frameField
	for _, k := range slices.Sorted(maps.Keys(body)) {
		fields = append(fields, frameField{Name: k, Value: body.Get(k)})
	}
	sid := query.Get("APP_SID")
	lang := query.Get("LANG")
	cfg := frameConfig{
		AppOrigin:   appOrigin,
		AppSID:      sid,
		InitData:    frameInitData(p, u, query, body, options, install),
		RefreshURL:  s.url + "/frame/" + p.memberID + "/refresh?user=" + strconv.Itoa(u.ID),
		FinishURL:   s.url + "/frame/" + p.memberID + "/finish?user=" + strconv.Itoa(u.ID),
		Users:       frameUsers(p),
		Leads:       frameLeads(p),
		AppOptions:  map[string]any{},
		UserOptions: map[string]any{},
		Texts:       frameTextsFor(lang),
	}
	data := struct {
		Lang, Title, PortalName, UserName, FrameName, Action, ScriptURL string
		Fields                                                          []frameField
		Config                                                          frameConfig
		Texts                                                           frameTexts
	}{
		Lang:       lang,
		Title:      "Bitrix24",
		PortalName: p.Name(),
		UserName:   strings.TrimSpace(u.Name + " " + u.LastName),
		FrameName:  p.Domain() + "|" + query.Get("PROTOCOL") + "|" + sid,
		Action:     action,
		ScriptURL:  s.url + "/frame/portal.js",
		Fields:     fields,
		Config:     cfg,
		Texts:      cfg.Texts,
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := framePage.Execute(w, data); err != nil {
		s.log.Error("render frame page", "member_id", p.memberID, "error", err)
	}
}

// frameAction appends the portal's query to the application's address, as the
// portal does ("?" or "&"), and returns it with the application's origin.
func frameAction(target string, query url.Values) (action, origin string, err error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "", "", &url.Error{Op: "parse", URL: target, Err: err}
	}
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + query.Encode(), u.Scheme + "://" + u.Host, nil
}

// frameInitData is the portal's answer to getInitData.
func frameInitData(p *Portal, u User, query, body url.Values, options map[string]any,
	install bool) map[string]any {
	expires, _ := strconv.Atoi(body.Get("AUTH_EXPIRES"))
	if options == nil {
		options = map[string]any{}
	}
	return map[string]any{
		"DOMAIN":            p.Domain(),
		"PROTOCOL":          0,
		"PATH":              "/rest/",
		"LANG":              query.Get("LANG"),
		"MEMBER_ID":         p.memberID,
		"IS_ADMIN":          u.Admin,
		"AUTH_ID":           body.Get("AUTH_ID"),
		"AUTH_EXPIRES":      expires,
		"REFRESH_ID":        body.Get("REFRESH_ID"),
		"PLACEMENT":         body.Get("PLACEMENT"),
		"PLACEMENT_OPTIONS": stringIDs(options),
		"INSTALL":           install,
		"FIRST_RUN":         false,
	}
}

// frameUsers lists the portal's active employees for the user picker.
func frameUsers(p *Portal) []frameUser {
	var out []frameUser
	for _, u := range p.Users() {
		if u.Dismissed {
			continue
		}
		out = append(out, frameUser{ID: u.ID, Name: strings.TrimSpace(u.Name + " " + u.LastName)})
	}
	return out
}

func (s *Server) serveFrameRefresh(w http.ResponseWriter, r *http.Request) {
	p, u, ok := s.framePortal(w, r)
	if !ok {
		return
	}
	tok := p.Tokens(u.ID)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"AUTH_ID":      tok.AccessToken,
		"REFRESH_ID":   tok.RefreshToken,
		"AUTH_EXPIRES": int(s.opts.AccessTTL.Seconds()),
	})
}

func (s *Server) serveFrameFinish(w http.ResponseWriter, r *http.Request) {
	p, u, ok := s.framePortal(w, r)
	if !ok {
		return
	}
	if err := p.FinishInstall(u.ID); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"result":true}`))
}

// frameLeads lists the portal's leads for the CRM picker.
func frameLeads(p *Portal) []frameLead {
	out := []frameLead{}
	for _, l := range p.Leads() {
		id, _ := strconv.Atoi(fmt.Sprint(l["ID"]))
		title, _ := l["TITLE"].(string)
		out = append(out, frameLead{ID: id, Title: title})
	}
	return out
}
