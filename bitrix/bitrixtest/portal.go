package bitrixtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PortalOptions describe a new portal.
type PortalOptions struct {
	// Name becomes the portal's path segment (and its "domain" name); empty gives
	// a generated "b24-xxxxxx" name like a fresh cloud portal.
	Name string
	// Lang is the portal's language (default "en").
	Lang string
	// Users are the portal's employees; without any, the portal has one administrator
	// with ID 1.
	Users []User
	// Departments are added to the root department 1 ("Company"), which always exists.
	Departments []Department
	// UserFields are the lead's custom UF_CRM_* fields.
	UserFields []UserField
	// Rate and Burst override the server's leaky bucket for this portal
	// (Enterprise: 5 and 250).
	Rate  float64
	Burst int
	// Location is the portal's time zone for dates in CRM answers (default UTC).
	Location *time.Location
	// LegacyFrameForm makes OpenForm leave out SERVER_ENDPOINT, APPLICATION_TOKEN and
	// APPLICATION_SCOPE, as the portal page template of 2021 and real recorded requests
	// do (current docs list them).
	LegacyFrameForm bool
}

// User is an employee of a portal.
type User struct {
	ID             int
	Name, LastName string
	Email          string
	// Admin is a portal administrator (may manage app settings).
	Admin bool
	// Dismissed is a fired user: ACTIVE false, no tokens.
	Dismissed bool
	// Department is the user's department ID (default 1, the root).
	Department int
	// AbsentUntil is the end of the user's absence (im.user.list.get "absent").
	AbsentUntil time.Time
	// Timeman is the workday state: "OPENED", "CLOSED", "PAUSED", "EXPIRED" or "" (never
	// opened; answered as CLOSED).
	Timeman string
	// TimeZone is an IANA zone name, e.g. "Europe/Berlin"; empty uses the portal's.
	TimeZone string
}

// Department is a node of the portal's company structure.
type Department struct {
	ID     int
	Name   string
	Parent int
	Head   int
}

// UserField is a custom lead field (UF_CRM_...).
type UserField struct {
	Code     string // "UF_CRM_1700000000"
	Type     string // "string", "integer", "double", "boolean", "enumeration", "datetime"
	Title    string
	Multiple bool
}

// App is the application as the administrator registers it on the portal: a local app
// with a handler (main page) URL and an optional install URL.
type App struct {
	InstallURL, HandlerURL string
	// Scope is comma-separated (default "crm,user,department,im,timeman,placement").
	Scope string
	// APIOnly marks an app without a user interface: the portal calls InstallURL
	// itself with ONAPPINSTALL as soon as the app is registered.
	APIOnly bool
}

const defaultScope = "crm,user,department,im,timeman,placement"

// appState is the app's installation on a portal.
type appState struct {
	App
	registered bool
	installed  bool
	version    int
	appToken   string
}

// Portal is one Bitrix24 portal on the server. It is safe for concurrent use.
type Portal struct {
	srv         *Server
	memberID    string
	lang        string
	loc         *time.Location
	legacyFrame bool

	tokenGen        atomic.Uint64 // bumped by ExpireAccessTokens
	installGen      atomic.Uint64 // bumped by Uninstall: every token dies
	paymentRequired atomic.Bool
	overload        atomic.Bool
	accessDenied    atomic.Bool
	deleted         atomic.Bool
	requests        atomic.Int64

	mu            sync.Mutex // guards everything below
	slug          string
	users         []User // sorted by ID
	departments   []Department
	userFields    []UserField
	app           appState
	crm           crmStore
	timeline      map[int][]string
	notifications map[int][]string
	options       *obj
	events        []EventBinding
	placements    []PlacementBinding
	nextBinding   int
	offline       offlineQueue
	deliveries    []Delivery
	deliveryCount int           // deliveries ever recorded, kept or not
	delivered     chan struct{} // closed and replaced on every new delivery record
	bucket        leakyBucket
	operating     map[string]*opCounter
	eventTokens   map[int]Token
}

var slugUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// NewPortal creates a portal with a random 32-hex member_id.
func (s *Server) NewPortal(opts PortalOptions) *Portal {
	p := &Portal{
		srv:         s,
		memberID:    randomHex(16),
		lang:        opts.Lang,
		loc:         opts.Location,
		legacyFrame: opts.LegacyFrameForm,
	}
	if p.lang == "" {
		p.lang = "en"
	}
	if p.loc == nil {
		p.loc = time.UTC
	}
	p.bucket = leakyBucket{rate: s.opts.Rate, burst: float64(s.opts.Burst)}
	if opts.Rate != 0 {
		p.bucket.rate = opts.Rate
	}
	if opts.Burst != 0 {
		p.bucket.burst = float64(opts.Burst)
	}
	p.departments = []Department{{ID: 1, Name: "Company"}}
	for _, d := range opts.Departments {
		p.addDepartment(d)
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{{ID: 1, Name: "Admin", Admin: true}}
	}
	for _, u := range users {
		p.addUser(u)
	}
	p.userFields = append(p.userFields, opts.UserFields...)

	s.mu.Lock()
	defer s.mu.Unlock()
	p.slug = s.freeSlug(opts.Name, p.memberID)
	s.portals[p.memberID] = p
	s.byPath[p.slug] = p
	return p
}

// freeSlug turns a name into an unused path segment. Callers hold s.mu.
func (s *Server) freeSlug(name, memberID string) string {
	base := slugUnsafe.ReplaceAllString(strings.ToLower(name), "-")
	base = strings.Trim(base, "-")
	if base == "" {
		base = "b24-" + memberID[:6]
	}
	slug := base
	for i := 2; s.byPath[slug] != nil; i++ {
		slug = base + "-" + strconv.Itoa(i)
	}
	return slug
}

// MemberID returns the portal's member_id.
func (p *Portal) MemberID() string { return p.memberID }

// Lang returns the portal's language.
func (p *Portal) Lang() string { return p.lang }

// Domain is what DOMAIN and auth[domain] carry: the listener's host:port (every
// portal shares it; the path tells them apart).
func (p *Portal) Domain() string { return p.srv.host() }

func (p *Portal) path() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slug
}

// Name returns the portal's current name (its path segment).
func (p *Portal) Name() string { return p.path() }

// portalURL is the portal's own page, URL()+"/portal/<name>/".
func (p *Portal) portalURL() string { return p.srv.url + "/portal/" + p.path() + "/" }

// ClientEndpoint is the portal's REST base, URL()+"/portal/<name>/rest/".
func (p *Portal) ClientEndpoint() string { return p.portalURL() + "rest/" }

// Rename gives the portal a new name: its REST endpoint moves, and the old one answers
// 302 with the new address, as after a domain change.
func (p *Portal) Rename(name string) {
	s := p.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	slug := s.freeSlug(name, p.memberID)
	p.mu.Lock()
	p.slug = slug
	p.mu.Unlock()
	s.byPath[slug] = p
}

// Delete makes every REST call answer PORTAL_DELETED.
func (p *Portal) Delete() { p.deleted.Store(true) }

func (p *Portal) isDeleted() bool { return p.deleted.Load() }

// SetPaymentRequired makes REST calls and refreshes answer PAYMENT_REQUIRED, and stops
// event deliveries, as when the app's paid period is over.
func (p *Portal) SetPaymentRequired(on bool) { p.paymentRequired.Store(on) }

// SetOverload makes every REST call answer OVERLOAD_LIMIT (a manual block by support).
func (p *Portal) SetOverload(on bool) { p.overload.Store(on) }

// SetAccessDenied makes every REST call answer ACCESS_DENIED, as on a plan without REST.
func (p *Portal) SetAccessDenied(on bool) { p.accessDenied.Store(on) }

// ExpireAccessTokens makes every access token issued so far answer expired_token.
func (p *Portal) ExpireAccessTokens() {
	p.tokenGen.Add(1)
	p.mu.Lock()
	p.eventTokens = nil
	p.mu.Unlock()
}

// RequestCount is how many REST requests this portal answered.
func (p *Portal) RequestCount() int64 { return p.requests.Load() }

// addUser inserts or replaces a user, keeping IDs sorted. Callers hold p.mu or own p.
func (p *Portal) addUser(u User) User {
	if u.ID == 0 {
		u.ID = 1
		if n := len(p.users); n > 0 {
			u.ID = p.users[n-1].ID + 1
		}
	}
	if u.Department == 0 {
		u.Department = 1
	}
	if u.Email == "" {
		u.Email = fmt.Sprintf("user%d@example.com", u.ID)
	}
	i := sort.Search(len(p.users), func(i int) bool { return p.users[i].ID >= u.ID })
	if i < len(p.users) && p.users[i].ID == u.ID {
		p.users[i] = u
		return u
	}
	p.users = append(p.users, User{})
	copy(p.users[i+1:], p.users[i:])
	p.users[i] = u
	if !p.hasDepartment(u.Department) {
		p.addDepartment(Department{ID: u.Department})
	}
	return u
}

// AddUser adds an employee; a zero ID takes the next free one. It returns the user
// as stored.
func (p *Portal) AddUser(u User) User {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addUser(u)
}

// UpdateUser replaces the user with u.ID.
func (p *Portal) UpdateUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addUser(u)
}

// User returns the user with the given ID.
func (p *Portal) User(id int) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.user(id)
	if u == nil {
		return User{}, false
	}
	return *u, true
}

// userActive reports whether a user exists and is not dismissed.
func (p *Portal) userActive(id int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.user(id)
	return u != nil && !u.Dismissed
}

// Users returns every user, sorted by ID.
func (p *Portal) Users() []User {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]User(nil), p.users...)
}

// user finds a user; callers hold p.mu.
func (p *Portal) user(id int) *User {
	i := sort.Search(len(p.users), func(i int) bool { return p.users[i].ID >= id })
	if i < len(p.users) && p.users[i].ID == id {
		return &p.users[i]
	}
	return nil
}

func (p *Portal) hasDepartment(id int) bool {
	for _, d := range p.departments {
		if d.ID == id {
			return true
		}
	}
	return false
}

func (p *Portal) addDepartment(d Department) {
	if d.Name == "" {
		d.Name = "Department " + strconv.Itoa(d.ID)
	}
	if d.Parent == 0 && d.ID != 1 {
		d.Parent = 1
	}
	for i := range p.departments {
		if p.departments[i].ID == d.ID {
			p.departments[i] = d
			return
		}
	}
	p.departments = append(p.departments, d)
}

// AddDepartment adds or replaces a department.
func (p *Portal) AddDepartment(d Department) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.addDepartment(d)
}

// AddUserField defines a custom lead field.
func (p *Portal) AddUserField(f UserField) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.userFields = append(p.userFields, f)
}

// RegisterApp registers the application on the portal, as an administrator saving a
// local app. A UI app is not installed until FinishInstall; an API-only app is
// installed at once and its InstallURL gets ONAPPINSTALL.
func (p *Portal) RegisterApp(a App) {
	if a.Scope == "" {
		a.Scope = defaultScope
	}
	p.mu.Lock()
	p.app = appState{App: a, registered: true, version: 1, appToken: randomHex(16)}
	if a.APIOnly && a.InstallURL != "" {
		p.bindLocked(EventBinding{Event: "ONAPPINSTALL", Handler: a.InstallURL})
	}
	p.mu.Unlock()
	if a.APIOnly {
		admin := p.firstAdmin()
		p.finishInstall(admin)
	}
}

func (p *Portal) firstAdmin() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.users {
		if u.Admin && !u.Dismissed {
			return u.ID
		}
	}
	return 0
}

// appSnapshot returns a copy of the app's state.
func (p *Portal) appSnapshot() appState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.app
}

func (p *Portal) appScope() string { return p.appSnapshot().Scope }

// ApplicationToken returns the application_token of the current installation.
func (p *Portal) ApplicationToken() string { return p.appSnapshot().appToken }

// Installed reports whether the app's installation is finished.
func (p *Portal) Installed() bool { return p.appSnapshot().installed }

// Tokens issues an access/refresh pair for a user, as the portal does when that user
// opens the app. Without a registered app it registers an API-only app with the
// default scope first.
func (p *Portal) Tokens(userID int) Token {
	if !p.appSnapshot().registered {
		p.RegisterApp(App{APIOnly: true})
	}
	return p.srv.issue(p, userID, true, 0)
}

// FinishInstall is what BX24.installFinish does in the install frame: the user must be
// an administrator; the app becomes installed and ONAPPINSTALL goes to the handlers
// bound for it.
func (p *Portal) FinishInstall(userID int) error {
	p.mu.Lock()
	u := p.user(userID)
	switch {
	case !p.app.registered:
		p.mu.Unlock()
		return errors.New("bitrixtest: no app registered on the portal")
	case u == nil || !u.Admin || u.Dismissed:
		p.mu.Unlock()
		return fmt.Errorf("bitrixtest: user %d is not an administrator", userID)
	}
	p.mu.Unlock()
	p.finishInstall(userID)
	return nil
}

func (p *Portal) finishInstall(userID int) {
	p.mu.Lock()
	p.app.installed = true
	data := p.appEventData(true)
	p.mu.Unlock()
	p.fireApp("ONAPPINSTALL", data, userID, false)
}

// appEventData is data[...] of ONAPPINSTALL / ONAPPUPDATE. Callers hold p.mu.
func (p *Portal) appEventData(install bool) [][2]string {
	data := [][2]string{{"[VERSION]", strconv.Itoa(p.app.version)}}
	if install {
		data = append(data, [2]string{"[ACTIVE]", "Y"}, [2]string{"[INSTALLED]", "Y"})
	}
	return append(data, [2]string{"[LANGUAGE_ID]", p.lang})
}

// UpdateApp installs a new version: ONAPPUPDATE goes to the handlers bound for it,
// then every event and placement binding is dropped, as Bitrix24 does on update.
func (p *Portal) UpdateApp(version string) {
	p.mu.Lock()
	if v, err := strconv.Atoi(version); err == nil {
		p.app.version = v
	} else {
		p.app.version++
	}
	data := p.appEventData(false)
	targets := p.onlineTargets("ONAPPUPDATE")
	p.events = nil
	p.placements = nil
	p.mu.Unlock()
	admin := p.firstAdmin()
	p.deliverApp(targets, "ONAPPUPDATE", data, admin, false)
}

// Uninstall removes the app: ONAPPUNINSTALL (with data[CLEAN]) goes to the handlers
// bound for it, carrying only the application token; bindings, options and every
// token are dropped.
func (p *Portal) Uninstall(clean bool) {
	p.mu.Lock()
	targets := p.onlineTargets("ONAPPUNINSTALL")
	cleanFlag := "0"
	if clean {
		cleanFlag = "1"
	}
	data := [][2]string{{"[LANGUAGE_ID]", p.lang}, {"[CLEAN]", cleanFlag}}
	token := p.app.appToken
	p.app = appState{appToken: token}
	p.events = nil
	p.placements = nil
	p.options = nil
	p.offline = offlineQueue{}
	p.eventTokens = nil
	p.mu.Unlock()
	p.installGen.Add(1)
	p.deliverApp(targets, "ONAPPUNINSTALL", data, 0, true)
}

// OpenForm returns what the portal's hidden form POSTs into the app frame when a user
// opens the app (placement "DEFAULT" or "") or a placement: the query string appended
// to the handler URL and the form body. Each call issues the user a fresh token pair.
func (p *Portal) OpenForm(userID int, placement string, options map[string]any) (
	query, body url.Values) {
	if placement == "" {
		placement = "DEFAULT"
	}
	tok := p.Tokens(userID)
	app := p.appSnapshot()
	query = url.Values{
		"DOMAIN":   {p.Domain()},
		"PROTOCOL": {"0"},
		"LANG":     {p.lang},
		"APP_SID":  {randomHex(16)},
	}
	body = url.Values{
		"AUTH_ID":           {tok.AccessToken},
		"AUTH_EXPIRES":      {strconv.Itoa(int(p.srv.opts.AccessTTL / time.Second))},
		"REFRESH_ID":        {tok.RefreshToken},
		"SERVER_ENDPOINT":   {p.srv.OAuthURL() + "/rest/"},
		"APPLICATION_TOKEN": {app.appToken},
		"APPLICATION_SCOPE": {app.Scope},
		"member_id":         {p.memberID},
		"status":            {"L"},
		"PLACEMENT":         {placement},
	}
	if p.legacyFrame {
		body.Del("SERVER_ENDPOINT")
		body.Del("APPLICATION_TOKEN")
		body.Del("APPLICATION_SCOPE")
	}
	if len(options) > 0 {
		data, _ := json.Marshal(stringIDs(options))
		body.Set("PLACEMENT_OPTIONS", string(data))
	}
	return query, body
}

// stringIDs renders numbers as strings, as the portal writes IDs in PLACEMENT_OPTIONS.
func stringIDs(options map[string]any) map[string]any {
	out := make(map[string]any, len(options))
	for k, v := range options {
		switch v.(type) {
		case int, int64, float64, json.Number:
			out[k] = str(v)
		default:
			out[k] = v
		}
	}
	return out
}

// PageURL returns the address the portal opens for a placement: the install URL while
// a UI app is not installed, the handler URL for "DEFAULT", else the handler bound to
// the placement.
func (p *Portal) PageURL(placement string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.app.registered {
		return "", errors.New("bitrixtest: no app registered on the portal")
	}
	if placement == "" || placement == "DEFAULT" {
		if !p.app.installed && p.app.InstallURL != "" {
			return p.app.InstallURL, nil
		}
		return p.app.HandlerURL, nil
	}
	if !p.app.installed {
		return "", errors.New("bitrixtest: the app is not installed yet")
	}
	for _, b := range p.placements {
		if b.Placement == placement {
			return b.Handler, nil
		}
	}
	return "", fmt.Errorf("bitrixtest: no handler bound to placement %s", placement)
}
