package bitrixtest

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// AddLead creates a lead as a person does in the portal's UI (byUser 0 = an automation
// rule: its events carry no tokens). fields use the legacy names ("TITLE", "PHONE":
// []map[string]any{{"VALUE": "..."}}, "UF_CRM_..."); read-only fields such as
// DATE_CREATE may be set too. ONCRMLEADADD fires.
func (p *Portal) AddLead(byUser int, fields map[string]any) int {
	return p.addEntity(leadKind, byUser, fields)
}

// UpdateLead changes a lead as a person does in the UI; ONCRMLEADUPDATE fires.
func (p *Portal) UpdateLead(byUser int, id int, fields map[string]any) {
	in, _ := fromGo(fields).(*obj)
	p.mu.Lock()
	e := p.crm.leads.get(id)
	if e == nil {
		p.mu.Unlock()
		return
	}
	p.modify(leadKind, e, byUser, in, true)
	p.mu.Unlock()
	p.fireCRM(leadKind.event+"UPDATE", id, byUser, nil)
}

// DeleteLead deletes a lead; ONCRMLEADDELETE fires.
func (p *Portal) DeleteLead(byUser int, id int) {
	p.mu.Lock()
	ok := p.crm.leads.remove(id)
	p.mu.Unlock()
	if ok {
		p.fireCRM(leadKind.event+"DELETE", id, byUser, nil)
	}
}

// Lead returns a stored lead in the legacy shape crm.lead.get answers.
func (p *Portal) Lead(id int) (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.crm.leads.get(id)
	if e == nil {
		return nil, false
	}
	return p.snapshot(leadKind, e), true
}

// Leads returns every lead in ID order, in the legacy shape.
func (p *Portal) Leads() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]map[string]any, len(p.crm.leads.order))
	for i, e := range p.crm.leads.order {
		out[i] = p.snapshot(leadKind, e)
	}
	return out
}

// CountLeads counts the leads whose scalar field equals value ("" matches an empty
// field), e.g. CountLeads("ASSIGNED_BY_ID", "1"); it is cheap on large portals.
func (p *Portal) CountLeads(field, value string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.crm.leads.order {
		if e.fields[field] == value {
			n++
		}
	}
	return n
}

// LeadField returns one scalar field of a lead in its legacy string form; ok is false
// when the lead does not exist or the field is empty.
func (p *Portal) LeadField(id int, field string) (value string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.crm.leads.get(id)
	if e == nil {
		return "", false
	}
	value, ok = e.fields[field]
	return value, ok
}

// LeadCount is the number of leads.
func (p *Portal) LeadCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.crm.leads.order)
}

// AddContact creates a contact with a responsible person, a phone and an e-mail
// (either may be empty), for "existing client" look-ups.
func (p *Portal) AddContact(owner int, phone, email string) int {
	return p.addEntity(contactKind, owner, clientFields(owner, phone, email, "NAME", "Contact"))
}

// AddCompany creates a company with a responsible person, a phone and an e-mail.
func (p *Portal) AddCompany(owner int, phone, email string) int {
	return p.addEntity(companyKind, owner, clientFields(owner, phone, email, "TITLE", "Company"))
}

func clientFields(owner int, phone, email, nameField, name string) map[string]any {
	f := map[string]any{"ASSIGNED_BY_ID": owner, nameField: name}
	if phone != "" {
		f["PHONE"] = []map[string]any{{"VALUE": phone, "VALUE_TYPE": "WORK"}}
	}
	if email != "" {
		f["EMAIL"] = []map[string]any{{"VALUE": email, "VALUE_TYPE": "WORK"}}
	}
	return f
}

func (p *Portal) addEntity(k *kind, byUser int, fields map[string]any) int {
	in, _ := fromGo(fields).(*obj)
	if in == nil {
		in = newObj()
	}
	p.mu.Lock()
	e := p.create(k, byUser, in, true)
	p.mu.Unlock()
	p.fireCRM(k.event+"ADD", e.id, byUser, nil)
	return e.id
}

// plain turns a rendered tree into plain Go maps and slices.
// An object that PHP would encode as a list still comes back as a map here.
func plain(o *obj) map[string]any {
	m := make(map[string]any, o.len())
	if o != nil {
		for _, k := range o.keys {
			m[k] = plainValue(o.m[k])
		}
	}
	return m
}

// plainValue gives a value the Go type encoding/json would decode its JSON into.
func plainValue(v any) any {
	switch t := v.(type) {
	case *obj:
		if t.len() == 0 {
			return []any{}
		}
		if t.isList() {
			return plainValue(list(t))
		}
		return plain(t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plainValue(x)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = x
		}
		return out
	case []int:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = float64(x)
		}
		return out
	case int:
		return float64(t)
	case json.Number:
		f, _ := t.Float64()
		return f
	}
	return v
}

// Timeline returns the comments written on a lead's timeline, oldest first.
func (p *Portal) Timeline(leadID int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.timeline[leadID]...)
}

// Notifications returns the notifications sent to a user, oldest first.
func (p *Portal) Notifications(userID int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.notifications[userID]...)
}

// crmMethods builds crm.<entity>.add/get/update/delete/list/fields for one kind.
func crmMethods(prefix string, k *kind, m map[string]methodSpec) {
	for name, fn := range map[string]func(*call, *kind) (outcome, *restError){
		"add": crmAdd, "get": crmGet, "update": crmUpdate, "delete": crmDelete,
		"list": crmList, "fields": crmFields,
	} {
		m[prefix+"."+name] = methodSpec{"crm", func(c *call) (outcome, *restError) {
			return fn(c, k)
		}}
	}
}

func crmAdd(c *call, k *kind) (outcome, *restError) {
	fields := c.object("fields")
	p := c.p
	p.mu.Lock()
	e := p.create(k, c.g.userID, fields, false)
	p.mu.Unlock()
	p.fireCRM(k.event+"ADD", e.id, c.g.userID, c.g)
	return outcome{result: e.id}, nil
}

func crmID(c *call) (int, *restError) {
	id, ok := intOf(c.param("id"))
	if !ok || id <= 0 {
		return 0, errCRMBadID
	}
	return id, nil
}

func crmGet(c *call, k *kind) (outcome, *restError) {
	id, err := crmID(c)
	if err != nil {
		return outcome{}, err
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.crm.table(k).get(id)
	if e == nil {
		return outcome{}, errCRMNotFound
	}
	return outcome{result: p.render(k, e, nil)}, nil
}

func crmUpdate(c *call, k *kind) (outcome, *restError) {
	id, err := crmID(c)
	if err != nil {
		return outcome{}, err
	}
	p := c.p
	p.mu.Lock()
	e := p.crm.table(k).get(id)
	if e == nil {
		p.mu.Unlock()
		return outcome{}, errCRMNotFound
	}
	p.modify(k, e, c.g.userID, c.object("fields"), false)
	p.mu.Unlock()
	p.fireCRM(k.event+"UPDATE", id, c.g.userID, c.g)
	return outcome{result: true}, nil
}

func crmDelete(c *call, k *kind) (outcome, *restError) {
	id, err := crmID(c)
	if err != nil {
		return outcome{}, err
	}
	p := c.p
	p.mu.Lock()
	ok := p.crm.table(k).remove(id)
	p.mu.Unlock()
	if !ok {
		return outcome{}, errCRMNotFound
	}
	p.fireCRM(k.event+"DELETE", id, c.g.userID, c.g)
	return outcome{result: true}, nil
}

func crmList(c *call, k *kind) (outcome, *restError) {
	conds := parseFilter(c.object("filter"))
	order := c.object("order")
	sel := newSelection(c.param("select"))
	start, _ := intOf(c.param("start"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var found []*entity
	for _, e := range candidates(p.crm.table(k), conds) {
		if matches(e, conds) {
			found = append(found, e)
		}
	}
	sortEntities(found, order)
	from, to, total, next := page(len(found), start)
	rows := make([]any, 0, to-from)
	for _, e := range found[from:to] {
		rows = append(rows, p.render(k, e, sel))
	}
	return outcome{result: rows, total: total, next: next}, nil
}

func crmFields(c *call, k *kind) (outcome, *restError) {
	out := newObj()
	for _, f := range k.fields {
		d := newObj().set("type", f.typ).set("isRequired", f.name == "TITLE" && k == leadKind).
			set("isReadOnly", f.readOnly).set("isImmutable", false).
			set("isMultiple", f.multiple).set("isDynamic", false).set("title", f.name)
		if f.statusType != "" {
			d.set("statusType", f.statusType)
		}
		out.set(f.name, d)
	}
	if k == leadKind {
		c.p.mu.Lock()
		for _, f := range c.p.userFields {
			title := f.Title
			if title == "" {
				title = f.Code
			}
			out.set(f.Code, newObj().set("type", f.Type).set("isRequired", false).
				set("isReadOnly", false).set("isImmutable", false).set("isMultiple", f.Multiple).
				set("isDynamic", true).set("title", f.Code).set("listLabel", title).
				set("formLabel", title).set("filterLabel", title))
		}
		c.p.mu.Unlock()
	}
	return outcome{result: out}, nil
}

// statusRow is one row of crm.status.list.
type statusRow struct {
	entity, id, name, semantics, color string
	sort                               int
}

var statusRows = []statusRow{
	{"STATUS", "NEW", "Unassigned", "", "#39A8EF", 10},
	{"STATUS", "IN_PROCESS", "In Progress", "", "#2FC6F6", 20},
	{"STATUS", "PROCESSED", "Processed", "", "#55D0E0", 30},
	{"STATUS", "CONVERTED", "Good lead", "S", "#7BD500", 40},
	{"STATUS", "JUNK", "Junk lead", "F", "#FF5752", 50},
	{"SOURCE", "CALL", "Call", "", "", 10},
	{"SOURCE", "EMAIL", "E-Mail", "", "", 20},
	{"SOURCE", "WEB", "Website", "", "", 30},
	{"SOURCE", "ADVERTISING", "Advertising", "", "", 40},
	{"SOURCE", "PARTNER", "Existing client", "", "", 50},
	{"SOURCE", "RECOMMENDATION", "By recommendation", "", "", 60},
	{"SOURCE", "TRADE_SHOW", "Show/Exhibition", "", "", 70},
	{"SOURCE", "WEBFORM", "CRM form", "", "", 80},
	{"SOURCE", "CALLBACK", "Callback", "", "", 90},
	{"SOURCE", "RC_GENERATOR", "Sales boost", "", "", 100},
	{"SOURCE", "STORE", "Online Store", "", "", 110},
	{"SOURCE", "OTHER", "Other", "", "", 120},
}

func crmStatusList(c *call) (outcome, *restError) {
	conds := parseFilter(c.object("filter"))
	rows := []any{}
	for i, s := range statusRows {
		e := &entity{id: i + 1, fields: map[string]string{
			"ID": strconv.Itoa(i + 1), "ENTITY_ID": s.entity, "STATUS_ID": s.id, "NAME": s.name,
			"SORT": strconv.Itoa(s.sort), "SEMANTICS": s.semantics}}
		if !matches(e, conds) {
			continue
		}
		var semantics any
		if s.semantics != "" {
			semantics = s.semantics
		}
		row := newObj().set("ID", strconv.Itoa(i+1)).set("ENTITY_ID", s.entity).
			set("STATUS_ID", s.id).set("NAME", s.name).set("NAME_INIT", s.name).
			set("SORT", strconv.Itoa(s.sort)).set("SYSTEM", "Y").set("CATEGORY_ID", nil).
			set("COLOR", s.color).set("SEMANTICS", semantics)
		if s.entity == "STATUS" {
			row.set("EXTRA", newObj().set("SEMANTICS", semanticsName(s.semantics)).
				set("COLOR", s.color))
		}
		rows = append(rows, row)
	}
	total := len(rows)
	return outcome{result: rows, total: &total}, nil
}

func semanticsName(s string) string {
	switch s {
	case "S":
		return "success"
	case "F":
		return "failure"
	}
	return "process"
}

// crmDuplicateFindByComm finds leads, contacts and companies by phone or e-mail.
func crmDuplicateFindByComm(c *call) (outcome, *restError) {
	typ := strings.ToUpper(str(c.param("type")))
	if typ != "PHONE" && typ != "EMAIL" {
		return outcome{}, newError(400, "", "Communication type is not defined or invalid.")
	}
	vals := list(c.param("values"))
	if len(vals) == 0 {
		return outcome{}, newError(400, "", "Communication values are not defined.")
	}
	if len(vals) > 20 {
		return outcome{}, newError(400, "", "Too many communication values (max 20).")
	}
	kinds := []*kind{leadKind, contactKind, companyKind}
	if et := strings.ToUpper(str(c.param("entity_type"))); et != "" {
		kinds = nil
		for _, k := range []*kind{leadKind, contactKind, companyKind} {
			if k.name == et {
				kinds = append(kinds, k)
			}
		}
		if kinds == nil {
			return outcome{}, newError(400, "", "Entity type is not defined or invalid.")
		}
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	out := newObj()
	for _, k := range kinds {
		var ids []int
		for _, e := range p.crm.table(k).order {
			if commMatch(e.multi[typ], vals, typ == "PHONE") {
				ids = append(ids, e.id)
			}
		}
		if len(ids) > 0 {
			out.set(k.name, ids)
		}
	}
	return outcome{result: out}, nil
}

func commMatch(have []multiValue, want []any, phone bool) bool {
	for _, h := range have {
		for _, w := range want {
			if phone && samePhone(h.value, str(w)) {
				return true
			}
			if !phone && strings.EqualFold(strings.TrimSpace(h.value), strings.TrimSpace(str(w))) {
				return true
			}
		}
	}
	return false
}

// samePhone compares phone numbers by their digits; numbers of ten digits or more are
// compared by their last ten, so "+1 (555) 010-2030" matches "5550102030".
func samePhone(a, b string) bool {
	da, db := digits(a), digits(b)
	if da == "" || db == "" {
		return false
	}
	if len(da) >= 10 && len(db) >= 10 {
		return da[len(da)-10:] == db[len(db)-10:]
	}
	return da == db
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func crmTimelineCommentAdd(c *call) (outcome, *restError) {
	f := c.object("fields")
	typ, _ := f.get("ENTITY_TYPE")
	idv, _ := f.get("ENTITY_ID")
	comment, _ := f.get("COMMENT")
	id, ok := intOf(idv)
	if !ok || !strings.EqualFold(str(typ), "lead") {
		return outcome{}, newError(400, "ERROR_ARGUMENT", "ENTITY_TYPE or ENTITY_ID is invalid")
	}
	if strings.TrimSpace(str(comment)) == "" {
		return outcome{}, newError(400, "ERROR_ARGUMENT", "COMMENT is empty")
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.crm.leads.get(id) == nil {
		return outcome{}, errCRMNotFound
	}
	if p.timeline == nil {
		p.timeline = make(map[int][]string)
	}
	p.timeline[id] = append(p.timeline[id], str(comment))
	p.crm.nextComment++
	return outcome{result: p.crm.nextComment}, nil
}

func imNotify(c *call) (outcome, *restError) {
	uid, ok := intOf(c.param("USER_ID"))
	msg := strings.TrimSpace(str(c.param("MESSAGE")))
	if !ok {
		return outcome{}, newError(400, "USER_ID_EMPTY", "Recipient ID not specified")
	}
	if msg == "" {
		return outcome{}, newError(400, "MESSAGE_EMPTY", "Message text not specified")
	}
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.user(uid) == nil {
		return outcome{}, newError(400, "USER_ID_EMPTY", "Recipient ID not specified")
	}
	if p.notifications == nil {
		p.notifications = make(map[int][]string)
	}
	p.notifications[uid] = append(p.notifications[uid], msg)
	p.crm.nextNotify++
	return outcome{result: p.crm.nextNotify}, nil
}

// candidates narrows a scan to the rows an "ID" or "@ID" condition names, in ID order;
// without one it is every row.
func candidates(t *table, conds []condition) []*entity {
	for _, c := range conds {
		if c.field != "ID" || (c.op != "=" && c.op != "@") {
			continue
		}
		var out []*entity
		for _, v := range c.values {
			if id, ok := intOf(v); ok {
				if e := t.get(id); e != nil {
					out = append(out, e)
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
		return slices.CompactFunc(out, func(a, b *entity) bool { return a == b })
	}
	return t.order
}
