package bitrixtest

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EventBinding is a handler bound with event.bind.
type EventBinding struct {
	ID        int
	Event     string // upper-case, "ONCRMLEADADD"
	Handler   string // empty for offline bindings
	AuthType  int    // user whose token the handler gets; 0 = the user who made the change
	Offline   bool
	Connector string // auth_connector of an offline binding
	// MinTimeout is options[minTimeout] of an ONOFFLINEEVENT binding, in seconds.
	MinTimeout int
}

// knownEvents are the event names event.bind accepts.
var knownEvents = map[string]bool{
	"ONAPPINSTALL": true, "ONAPPUPDATE": true, "ONAPPUNINSTALL": true, "ONAPPTEST": true,
	"ONAPPPAYMENT": true, "ONOFFLINEEVENT": true,
	"ONCRMLEADADD": true, "ONCRMLEADUPDATE": true, "ONCRMLEADDELETE": true,
	"ONCRMCONTACTADD": true, "ONCRMCONTACTUPDATE": true, "ONCRMCONTACTDELETE": true,
	"ONCRMCOMPANYADD": true, "ONCRMCOMPANYUPDATE": true, "ONCRMCOMPANYDELETE": true,
	"ONCRMDEALADD": true, "ONCRMDEALUPDATE": true, "ONCRMDEALDELETE": true,
	"ONUSERADD": true,
}

// Bindings returns the portal's event and placement bindings.
func (p *Portal) Bindings() (events []EventBinding, placements []PlacementBinding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]EventBinding(nil), p.events...),
		append([]PlacementBinding(nil), p.placements...)
}

// bindLocked adds a binding; callers hold p.mu.
func (p *Portal) bindLocked(b EventBinding) EventBinding {
	p.nextBinding++
	b.ID = p.nextBinding
	p.events = append(p.events, b)
	return b
}

// onlineTargets are the online bindings of an event; callers hold p.mu.
func (p *Portal) onlineTargets(event string) []EventBinding {
	var out []EventBinding
	for _, b := range p.events {
		if b.Event == event && !b.Offline {
			out = append(out, b)
		}
	}
	return out
}

// validHandler checks a handler URL the way the portal does.
func validHandler(raw string) *restError {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return newError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return newError(400, "ERROR_UNSUPPORTED_PROTOCOL", "Unsupported protocol")
	}
	if !strings.Contains(u.Hostname(), ".") {
		return newError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
	}
	return nil
}

func eventBind(c *call) (outcome, *restError) {
	name := strings.ToUpper(strings.TrimSpace(str(c.param("event"))))
	if !knownEvents[name] {
		return outcome{}, newError(400, "ERROR_EVENT_NOT_FOUND", "Event not found")
	}
	offline := strings.EqualFold(str(c.param("event_type")), "offline")
	admin := c.isAdmin()
	b := EventBinding{Event: name, Offline: offline, Connector: str(c.param("auth_connector"))}
	if offline && !admin {
		return outcome{}, newError(403, "ACCESS_DENIED",
			"Offline events require administrator access rights")
	}
	if !offline {
		b.Handler = str(c.param("handler"))
		if err := validHandler(b.Handler); err != nil {
			return outcome{}, err
		}
	}
	if at, ok := intOf(c.param("auth_type")); ok {
		b.AuthType = at
	}
	if !admin && b.AuthType != 0 && b.AuthType != c.g.userID {
		return outcome{}, newError(403, "ACCESS_DENIED",
			"Setting auth_type requires administrator access rights")
	}
	if opts, ok := c.param("options").(*obj); ok {
		if v, ok := opts.get("minTimeout"); ok {
			b.MinTimeout, _ = intOf(v)
		}
	} else {
		b.MinTimeout = 1
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.Event == b.Event && e.Handler == b.Handler && e.AuthType == b.AuthType &&
			e.Offline == b.Offline && e.Connector == b.Connector {
			return outcome{}, newError(400, "ERROR_CORE",
				"Unable to set event handler: Handler already binded")
		}
	}
	p.bindLocked(b)
	return outcome{result: true}, nil
}

func eventUnbind(c *call) (outcome, *restError) {
	name := strings.ToUpper(strings.TrimSpace(str(c.param("event"))))
	handler := str(c.param("handler"))
	offline := strings.EqualFold(str(c.param("event_type")), "offline")
	authType, hasAuthType := intOf(c.param("auth_type"))
	if c.param("auth_type") != nil && str(c.param("auth_type")) == "" {
		hasAuthType = true
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.events[:0]
	count := 0
	for _, b := range p.events {
		match := b.Event == name && b.Offline == offline &&
			(offline || b.Handler == handler) && (!hasAuthType || b.AuthType == authType)
		if match {
			count++
			continue
		}
		kept = append(kept, b)
	}
	p.events = kept
	return outcome{result: newObj().set("count", count)}, nil
}

func eventGet(c *call) (outcome, *restError) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	rows := []any{}
	for _, b := range p.events {
		offline := 0
		if b.Offline {
			offline = 1
		}
		row := newObj().set("event", b.Event).set("handler", b.Handler).
			set("auth_type", strconv.Itoa(b.AuthType)).set("offline", offline)
		if b.Offline {
			row.set("connector", b.Connector)
		}
		rows = append(rows, row)
	}
	return outcome{result: rows}, nil
}

// fireCRM raises a CRM event for an entity: online handlers get a delivery, offline
// bindings a record. by is the token of the REST call that made the change (nil for a
// change made in the portal's UI or by automation).
func (p *Portal) fireCRM(event string, id int, byUser int, by *grant) {
	hops := 3
	if by != nil && by.hops > 0 {
		if by.hops == 1 {
			return // the event session is used up: the portal raises no further events
		}
		hops = by.hops - 1
	}
	p.mu.Lock()
	if !p.app.installed || p.paymentRequired.Load() {
		p.mu.Unlock()
		return
	}
	data := [][2]string{{"[FIELDS][ID]", strconv.Itoa(id)}}
	var jobs []*delivery
	notify := false
	for _, b := range p.events {
		if b.Event != event {
			continue
		}
		if b.Offline {
			if by != nil && b.Connector == "" {
				continue // the app's own change through REST is not queued for it
			}
			p.offline.record(event, id, b.Connector, time.Now())
			notify = true
			continue
		}
		user := byUser
		if b.AuthType != 0 {
			user = b.AuthType
		}
		jobs = append(jobs, p.newDelivery(b, event, data, p.crmAuth(user, hops)))
	}
	if notify {
		jobs = append(jobs, p.offlineNotifications()...)
	}
	p.mu.Unlock()
	p.srv.delivery.enqueue(jobs)
}

// crmAuth is the auth block of a CRM event: the user's access token without a refresh
// token, or no token at all for a change without a user. Callers hold p.mu.
func (p *Portal) crmAuth(userID, hops int) [][2]string {
	if userID == 0 || p.user(userID) == nil {
		return p.tokenlessAuth(true)
	}
	tok := p.eventToken(userID, hops)
	return p.userAuth(tok, false)
}

// eventToken returns an access token minted for event deliveries, reused while it has
// more than half of its life left. Callers hold p.mu.
func (p *Portal) eventToken(userID, hops int) Token {
	key := userID*8 + hops
	tok, ok := p.eventTokens[key]
	if ok && time.Until(tok.Expires) > p.srv.opts.AccessTTL/2 {
		return tok
	}
	tok = p.srv.issue(p, userID, false, hops)
	if p.eventTokens == nil {
		p.eventTokens = make(map[int]Token)
	}
	p.eventTokens[key] = tok
	return tok
}

// userAuth is a full auth block for a token. Callers hold p.mu.
func (p *Portal) userAuth(tok Token, withRefresh bool) [][2]string {
	auth := [][2]string{
		{"access_token", tok.AccessToken},
		{"expires", strconv.FormatInt(tok.Expires.Unix(), 10)},
		{"expires_in", strconv.Itoa(int(p.srv.opts.AccessTTL / time.Second))},
		{"scope", p.app.Scope},
		{"domain", p.Domain()},
		{"server_endpoint", p.srv.OAuthURL() + "/rest/"},
		{"status", "L"},
		{"client_endpoint", p.srv.url + "/portal/" + p.slug + "/rest/"},
		{"member_id", p.memberID},
		{"user_id", strconv.Itoa(tok.UserID)},
	}
	if withRefresh {
		auth = append(auth[:1], append([][2]string{{"refresh_token", tok.RefreshToken}},
			auth[1:]...)...)
	}
	return append(auth, [2]string{"application_token", p.app.appToken})
}

// tokenlessAuth is the auth block of an event without a user (automation) or of
// ONAPPUNINSTALL. Callers hold p.mu.
func (p *Portal) tokenlessAuth(withScope bool) [][2]string {
	auth := [][2]string{{"domain", p.Domain()}}
	if withScope {
		auth = append(auth, [2]string{"scope", p.app.Scope}, [2]string{"status", "L"})
	}
	return append(auth,
		[2]string{"server_endpoint", p.srv.OAuthURL() + "/rest/"},
		[2]string{"client_endpoint", p.srv.url + "/portal/" + p.slug + "/rest/"},
		[2]string{"member_id", p.memberID},
		[2]string{"application_token", p.app.appToken})
}

// fireApp raises ONAPPINSTALL (with the installing user's new token pair).
func (p *Portal) fireApp(event string, data [][2]string, userID int, tokenless bool) {
	p.mu.Lock()
	targets := p.onlineTargets(event)
	p.mu.Unlock()
	p.deliverApp(targets, event, data, userID, tokenless)
}

// deliverApp sends an app lifecycle event to targets: ONAPPINSTALL and ONAPPUPDATE
// carry a refresh token, ONAPPUNINSTALL only the application token.
func (p *Portal) deliverApp(targets []EventBinding, event string, data [][2]string,
	userID int, tokenless bool) {
	if len(targets) == 0 {
		return
	}
	var tok Token
	if !tokenless {
		tok = p.srv.issue(p, userID, true, 0)
	}
	p.mu.Lock()
	jobs := make([]*delivery, 0, len(targets))
	for _, b := range targets {
		var auth [][2]string
		if tokenless {
			auth = p.tokenlessAuth(false)
		} else {
			auth = p.userAuth(tok, true)
		}
		jobs = append(jobs, p.newDelivery(b, event, data, auth))
	}
	p.mu.Unlock()
	p.srv.delivery.enqueue(jobs)
}

// newDelivery prepares one POST; the body gets its ts when it is sent. Callers hold p.mu.
func (p *Portal) newDelivery(b EventBinding, event string, data, auth [][2]string) *delivery {
	head := [][2]string{{"event", event}, {"event_handler_id", strconv.Itoa(b.ID)}}
	for _, d := range data {
		head = append(head, [2]string{"data" + d[0], d[1]})
	}
	tail := make([][2]string, len(auth))
	for i, a := range auth {
		tail[i] = [2]string{"auth[" + a[0] + "]", a[1]}
	}
	return &delivery{portal: p, event: event, handler: b.Handler, handlerID: b.ID,
		head: head, tail: tail}
}

// eventTest answers event.test: ONAPPTEST goes to the handlers bound for it, with the
// call's parameters under data[QUERY].
func eventTest(c *call) (outcome, *restError) {
	var data [][2]string
	for _, k := range c.in.keys {
		if k == "auth" || k == "access_token" {
			continue
		}
		if v, ok := c.in.m[k].(string); ok {
			data = append(data, [2]string{"[QUERY][" + k + "]", v})
		}
	}
	p := c.p
	p.mu.Lock()
	targets := p.onlineTargets("ONAPPTEST")
	var jobs []*delivery
	for _, b := range targets {
		jobs = append(jobs, p.newDelivery(b, "ONAPPTEST", data, p.crmAuth(c.g.userID, 3)))
	}
	p.mu.Unlock()
	p.srv.delivery.enqueue(jobs)
	return outcome{result: true}, nil
}

// eventsList answers events: the names event.bind accepts.
func eventsList(*call) (outcome, *restError) {
	names := make([]string, 0, len(knownEvents))
	for name := range knownEvents {
		names = append(names, name)
	}
	sort.Strings(names)
	return outcome{result: names}, nil
}
