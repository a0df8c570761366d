package bitrixtest

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// fieldDef describes one standard field of a CRM entity in the legacy API.
type fieldDef struct {
	name       string
	typ        string // "integer", "string", "char", "double", "user", "datetime", ...
	readOnly   bool
	statusType string
	multiple   bool
}

// kind is a CRM entity type: lead, contact or company.
type kind struct {
	name   string // "LEAD"
	event  string // "ONCRMLEAD"
	fields []fieldDef
	byName map[string]*fieldDef
}

func newKind(name, event string, fields []fieldDef) *kind {
	k := &kind{name: name, event: event, fields: fields, byName: make(map[string]*fieldDef)}
	for i := range k.fields {
		k.byName[k.fields[i].name] = &k.fields[i]
	}
	return k
}

func strs(typ string, names ...string) []fieldDef {
	out := make([]fieldDef, len(names))
	for i, n := range names {
		out[i] = fieldDef{name: n, typ: typ}
	}
	return out
}

func ro(typ string, names ...string) []fieldDef {
	out := strs(typ, names...)
	for i := range out {
		out[i].readOnly = true
	}
	return out
}

func concat(parts ...[]fieldDef) []fieldDef {
	var out []fieldDef
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var multiFields = []fieldDef{
	{name: "PHONE", typ: "crm_multifield", multiple: true},
	{name: "EMAIL", typ: "crm_multifield", multiple: true},
	{name: "WEB", typ: "crm_multifield", multiple: true},
	{name: "IM", typ: "crm_multifield", multiple: true},
}

var leadKind = newKind("LEAD", "ONCRMLEAD", concat(
	ro("integer", "ID"),
	strs("string", "TITLE"),
	[]fieldDef{{name: "HONORIFIC", typ: "crm_status", statusType: "HONORIFIC"}},
	strs("string", "NAME", "SECOND_NAME", "LAST_NAME"),
	strs("date", "BIRTHDATE"),
	strs("string", "COMPANY_TITLE"),
	[]fieldDef{{name: "SOURCE_ID", typ: "crm_status", statusType: "SOURCE"}},
	strs("string", "SOURCE_DESCRIPTION"),
	[]fieldDef{{name: "STATUS_ID", typ: "crm_status", statusType: "STATUS"}},
	strs("string", "STATUS_DESCRIPTION"),
	ro("string", "STATUS_SEMANTIC_ID"),
	strs("string", "POST", "ADDRESS", "ADDRESS_2", "ADDRESS_CITY", "ADDRESS_POSTAL_CODE",
		"ADDRESS_REGION", "ADDRESS_PROVINCE", "ADDRESS_COUNTRY", "ADDRESS_COUNTRY_CODE"),
	strs("crm_currency", "CURRENCY_ID"),
	strs("double", "OPPORTUNITY"),
	strs("char", "IS_MANUAL_OPPORTUNITY", "OPENED"),
	strs("string", "COMMENTS"),
	ro("char", "HAS_PHONE", "HAS_EMAIL", "HAS_IMOL"),
	strs("user", "ASSIGNED_BY_ID"),
	ro("user", "CREATED_BY_ID", "MODIFY_BY_ID", "MOVED_BY_ID"),
	ro("datetime", "DATE_CREATE", "DATE_MODIFY", "MOVED_TIME"),
	strs("crm_company", "COMPANY_ID"),
	strs("crm_contact", "CONTACT_ID"),
	ro("char", "IS_RETURN_CUSTOMER"),
	ro("datetime", "DATE_CLOSED"),
	strs("string", "ORIGINATOR_ID", "ORIGIN_ID",
		"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM"),
	ro("user", "LAST_ACTIVITY_BY"),
	ro("datetime", "LAST_ACTIVITY_TIME"),
	multiFields,
))

var contactKind = newKind("CONTACT", "ONCRMCONTACT", concat(
	ro("integer", "ID"),
	strs("string", "NAME", "SECOND_NAME", "LAST_NAME", "POST", "COMMENTS"),
	strs("char", "OPENED"),
	[]fieldDef{{name: "TYPE_ID", typ: "crm_status", statusType: "CONTACT_TYPE"}},
	[]fieldDef{{name: "SOURCE_ID", typ: "crm_status", statusType: "SOURCE"}},
	strs("crm_company", "COMPANY_ID"),
	strs("user", "ASSIGNED_BY_ID"),
	ro("user", "CREATED_BY_ID", "MODIFY_BY_ID"),
	ro("datetime", "DATE_CREATE", "DATE_MODIFY"),
	ro("char", "HAS_PHONE", "HAS_EMAIL", "HAS_IMOL"),
	multiFields,
))

var companyKind = newKind("COMPANY", "ONCRMCOMPANY", concat(
	ro("integer", "ID"),
	strs("string", "TITLE"),
	[]fieldDef{{name: "COMPANY_TYPE", typ: "crm_status", statusType: "COMPANY_TYPE"}},
	[]fieldDef{{name: "INDUSTRY", typ: "crm_status", statusType: "INDUSTRY"}},
	strs("string", "COMMENTS"),
	strs("char", "OPENED"),
	strs("user", "ASSIGNED_BY_ID"),
	ro("user", "CREATED_BY_ID", "MODIFY_BY_ID"),
	ro("datetime", "DATE_CREATE", "DATE_MODIFY"),
	ro("char", "HAS_PHONE", "HAS_EMAIL", "HAS_IMOL"),
	multiFields,
))

// multiValue is one entry of a multi-field (PHONE, EMAIL, WEB, IM).
type multiValue struct {
	id        int
	valueType string
	value     string
}

// entity is a stored lead, contact or company.
type entity struct {
	id     int
	fields map[string]string // scalar fields in legacy string form; absent = null
	multi  map[string][]multiValue
	uf     map[string]any // custom fields: string or []string
}

// table holds the entities of one kind, in ID order.
type table struct {
	byID  map[int]*entity
	order []*entity
	next  int
}

func (t *table) get(id int) *entity {
	if t.byID == nil {
		return nil
	}
	return t.byID[id]
}

func (t *table) insert(e *entity) {
	if t.byID == nil {
		t.byID = make(map[int]*entity)
	}
	t.next++
	e.id = t.next
	t.byID[e.id] = e
	t.order = append(t.order, e)
}

func (t *table) remove(id int) bool {
	if t.byID[id] == nil {
		return false
	}
	delete(t.byID, id)
	i := sort.Search(len(t.order), func(i int) bool { return t.order[i].id >= id })
	t.order = append(t.order[:i], t.order[i+1:]...)
	return true
}

// crmStore is a portal's CRM.
type crmStore struct {
	leads, contacts, companies table
	nextMulti                  int
	nextComment                int
	nextNotify                 int
}

func (c *crmStore) table(k *kind) *table {
	switch k {
	case contactKind:
		return &c.contacts
	case companyKind:
		return &c.companies
	}
	return &c.leads
}

const dateLayout = "2006-01-02T15:04:05-07:00"

// setFields writes fields into e as the legacy API does: unknown and (unless trusted)
// read-only fields are ignored, scalars are stored as strings, multi-field entries
// without an ID are appended, entries with DELETE=Y removed. Callers hold p.mu.
func (p *Portal) setFields(k *kind, e *entity, fields *obj, trusted bool) {
	for _, key := range fields.keys {
		name := strings.ToUpper(key)
		v := fields.m[key]
		if strings.HasPrefix(name, "UF_") {
			p.setUserField(k, e, name, v)
			continue
		}
		def := k.byName[name]
		if def == nil || name == "ID" || (def.readOnly && !trusted) {
			continue
		}
		if def.multiple {
			p.setMulti(e, name, v)
			continue
		}
		s := normalize(def.typ, v, p.loc)
		if s == "" {
			delete(e.fields, name)
		} else {
			e.fields[name] = s
		}
	}
}

// normalize renders a value in the legacy string form of its field type.
func normalize(typ string, v any, loc *time.Location) string {
	switch typ {
	case "char":
		switch t := v.(type) {
		case bool:
			if t {
				return "Y"
			}
			return "N"
		}
		s := strings.ToUpper(str(v))
		if s == "1" || s == "TRUE" {
			return "Y"
		}
		if s == "0" || s == "FALSE" {
			return "N"
		}
		return s
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(str(v)), 64)
		if err != nil {
			return str(v)
		}
		return strconv.FormatFloat(f, 'f', 2, 64)
	case "integer", "user", "crm_company", "crm_contact":
		if n, ok := intOf(v); ok {
			if n == 0 && (typ == "crm_company" || typ == "crm_contact") {
				return ""
			}
			return strconv.Itoa(n)
		}
		return ""
	case "datetime":
		if t, ok := parseTime(str(v)); ok {
			return t.In(loc).Format(dateLayout)
		}
		return str(v)
	}
	return str(v)
}

func (p *Portal) setUserField(k *kind, e *entity, name string, v any) {
	if k != leadKind {
		return
	}
	for _, f := range p.userFields {
		if f.Code != name {
			continue
		}
		if e.uf == nil {
			e.uf = make(map[string]any)
		}
		if f.Multiple {
			var vals []string
			for _, x := range list(v) {
				vals = append(vals, normalize(f.Type, x, p.loc))
			}
			e.uf[name] = vals
			return
		}
		e.uf[name] = normalize(f.Type, v, p.loc)
		return
	}
}

func (p *Portal) setMulti(e *entity, name string, v any) {
	if e.multi == nil {
		e.multi = make(map[string][]multiValue)
	}
	for _, item := range list(v) {
		o, ok := item.(*obj)
		if !ok {
			if s := str(item); s != "" {
				p.crm.nextMulti++
				e.multi[name] = append(e.multi[name],
					multiValue{id: p.crm.nextMulti, valueType: "WORK", value: s})
			}
			continue
		}
		value, _ := o.get("VALUE")
		vt, _ := o.get("VALUE_TYPE")
		del, _ := o.get("DELETE")
		id, hasID := intOf(o.m["ID"])
		if hasID {
			p.updateMulti(e, name, id, str(value), str(vt), truthy(del))
			continue
		}
		if str(value) == "" {
			continue
		}
		valueType := str(vt)
		if valueType == "" {
			valueType = "WORK"
		}
		p.crm.nextMulti++
		e.multi[name] = append(e.multi[name],
			multiValue{id: p.crm.nextMulti, valueType: valueType, value: str(value)})
	}
}

func (p *Portal) updateMulti(e *entity, name string, id int, value, vt string, del bool) {
	vals := e.multi[name]
	for i := range vals {
		if vals[i].id != id {
			continue
		}
		if del || value == "" {
			e.multi[name] = append(vals[:i], vals[i+1:]...)
			return
		}
		vals[i].value = value
		if vt != "" {
			vals[i].valueType = vt
		}
		return
	}
}

// derive recomputes the fields Bitrix24 maintains itself.
func derive(k *kind, e *entity) {
	yn := func(b bool) string {
		if b {
			return "Y"
		}
		return "N"
	}
	e.fields["HAS_PHONE"] = yn(len(e.multi["PHONE"]) > 0)
	e.fields["HAS_EMAIL"] = yn(len(e.multi["EMAIL"]) > 0)
	e.fields["HAS_IMOL"] = yn(hasIMOL(e.multi["IM"]))
	if k != leadKind {
		return
	}
	switch e.fields["STATUS_ID"] {
	case "CONVERTED":
		e.fields["STATUS_SEMANTIC_ID"] = "S"
	case "JUNK":
		e.fields["STATUS_SEMANTIC_ID"] = "F"
	default:
		e.fields["STATUS_SEMANTIC_ID"] = "P"
	}
}

func hasIMOL(vals []multiValue) bool {
	for _, v := range vals {
		if v.valueType == "IMOL" {
			return true
		}
	}
	return false
}

// create adds an entity made by byUser (0 = the system); callers hold p.mu.
func (p *Portal) create(k *kind, byUser int, fields *obj, trusted bool) *entity {
	now := time.Now().In(p.loc).Format(dateLayout)
	e := &entity{fields: make(map[string]string)}
	p.crm.table(k).insert(e)
	author := byUser
	if author == 0 {
		author = 1
	}
	e.fields["ID"] = strconv.Itoa(e.id)
	e.fields["OPENED"] = "Y"
	e.fields["ASSIGNED_BY_ID"] = strconv.Itoa(author)
	e.fields["CREATED_BY_ID"] = strconv.Itoa(author)
	e.fields["MODIFY_BY_ID"] = strconv.Itoa(author)
	e.fields["DATE_CREATE"] = now
	e.fields["DATE_MODIFY"] = now
	if k == leadKind {
		e.fields["STATUS_ID"] = "NEW"
		e.fields["CURRENCY_ID"] = "USD"
		e.fields["OPPORTUNITY"] = "0.00"
		e.fields["IS_MANUAL_OPPORTUNITY"] = "N"
		e.fields["IS_RETURN_CUSTOMER"] = "N"
		e.fields["MOVED_BY_ID"] = strconv.Itoa(author)
		e.fields["MOVED_TIME"] = now
	}
	p.setFields(k, e, fields, trusted)
	if k != contactKind && e.fields["TITLE"] == "" {
		e.fields["TITLE"] = strings.ToTitle(k.name[:1]) + strings.ToLower(k.name[1:]) +
			" #" + strconv.Itoa(e.id)
	}
	derive(k, e)
	return e
}

// modify changes an entity on behalf of byUser; callers hold p.mu.
func (p *Portal) modify(k *kind, e *entity, byUser int, fields *obj, trusted bool) {
	status := e.fields["STATUS_ID"]
	p.setFields(k, e, fields, trusted)
	now := time.Now().In(p.loc).Format(dateLayout)
	author := byUser
	if author == 0 {
		author = 1
	}
	e.fields["MODIFY_BY_ID"] = strconv.Itoa(author)
	e.fields["DATE_MODIFY"] = now
	if k == leadKind && e.fields["STATUS_ID"] != status {
		e.fields["MOVED_BY_ID"] = strconv.Itoa(author)
		e.fields["MOVED_TIME"] = now
		if sem := e.fields["STATUS_ID"]; sem == "CONVERTED" || sem == "JUNK" {
			e.fields["DATE_CLOSED"] = now
		}
	}
	derive(k, e)
}

// render returns an entity in the legacy shape: every field a string or null, the
// multi-fields present when selected and filled, custom fields null when empty.
// sel nil means everything crm.*.get returns. Callers hold p.mu.
func (p *Portal) render(k *kind, e *entity, sel *selection) *obj {
	o := newObj()
	for _, f := range k.fields {
		if f.multiple {
			if (sel == nil || sel.has(f.name)) && len(e.multi[f.name]) > 0 {
				o.set(f.name, renderMulti(f.name, e.multi[f.name]))
			}
			continue
		}
		if sel != nil && !sel.scalar(f.name) {
			continue
		}
		if v, ok := e.fields[f.name]; ok {
			o.set(f.name, v)
		} else {
			o.set(f.name, nil)
		}
	}
	if k != leadKind {
		return o
	}
	for _, f := range p.userFields {
		if sel != nil && !sel.userField(f.Code) {
			continue
		}
		o.set(f.Code, renderUF(f, e.uf[f.Code]))
	}
	return o
}

// snapshot is render(k, e, nil) as plain Go maps, built directly: the Go API reads
// whole CRMs with it. Callers hold p.mu.
func (p *Portal) snapshot(k *kind, e *entity) map[string]any {
	m := make(map[string]any, len(k.fields)+len(p.userFields))
	for i := range k.fields {
		f := &k.fields[i]
		if !f.multiple {
			if v, ok := e.fields[f.name]; ok {
				m[f.name] = v
			} else {
				m[f.name] = nil
			}
			continue
		}
		vals := e.multi[f.name]
		if len(vals) == 0 {
			continue
		}
		entries := make([]any, len(vals))
		for j, v := range vals {
			entries[j] = map[string]any{"ID": strconv.Itoa(v.id), "VALUE_TYPE": v.valueType,
				"VALUE": v.value, "TYPE_ID": f.name}
		}
		m[f.name] = entries
	}
	if k == leadKind {
		for _, f := range p.userFields {
			m[f.Code] = plainValue(renderUF(f, e.uf[f.Code]))
		}
	}
	return m
}

func renderMulti(name string, vals []multiValue) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = newObj().set("ID", strconv.Itoa(v.id)).set("VALUE_TYPE", v.valueType).
			set("VALUE", v.value).set("TYPE_ID", name)
	}
	return out
}

func renderUF(f UserField, v any) any {
	switch t := v.(type) {
	case nil:
		if f.Multiple {
			return false
		}
		return nil
	case []string:
		return t
	case string:
		if f.Type == "boolean" {
			return t == "Y" || t == "1"
		}
		if t == "" {
			return nil
		}
		return t
	}
	return v
}

// selection is the "select" parameter of a list call.
type selection struct {
	all    bool // "*" or nothing
	allUF  bool // "UF_*"
	fields map[string]bool
}

func newSelection(v any) *selection {
	sel := &selection{fields: map[string]bool{"ID": true}}
	items := list(v)
	if len(items) == 0 {
		sel.all = true
	}
	for _, item := range items {
		switch name := strings.ToUpper(str(item)); name {
		case "*":
			sel.all = true
		case "UF_*":
			sel.allUF = true
		default:
			sel.fields[name] = true
		}
	}
	return sel
}

func (s *selection) has(name string) bool { return s.fields[name] }

func (s *selection) scalar(name string) bool { return s.all || s.fields[name] }

func (s *selection) userField(code string) bool { return s.allUF || s.fields[code] }

// values returns what a filter compares for a field of e: one value for a scalar,
// every entry for a multi-field or a multiple custom field.
func values(e *entity, field string) []string {
	if vals, ok := e.multi[field]; ok {
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v.value
		}
		return out
	}
	if strings.HasPrefix(field, "UF_") {
		switch t := e.uf[field].(type) {
		case string:
			return []string{t}
		case []string:
			return t
		}
		return nil
	}
	if v, ok := e.fields[field]; ok {
		return []string{v}
	}
	return nil
}

// compare orders two legacy values: as numbers when both are numbers, as times when
// both are dates, else as case-insensitive text.
func compare(a, b string) int {
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA == nil && errB == nil && !math.IsNaN(fa) && !math.IsNaN(fb) {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	if ta, ok := parseTime(a); ok {
		if tb, ok := parseTime(b); ok {
			return ta.Compare(tb)
		}
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

// parseTime reads the date forms Bitrix24 accepts in filters and fields.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05",
		"2006-01-02", "02.01.2006 15:04:05", "02.01.2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
