package intake

import (
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Lead is the normalized lead of an intake post, ready for crm.lead.add.
type Lead struct {
	Title             string            `json:"title,omitempty"`
	Name              string            `json:"name,omitempty"`
	SecondName        string            `json:"second_name,omitempty"`
	LastName          string            `json:"last_name,omitempty"`
	Phones            []Contact         `json:"phones,omitempty"`
	Emails            []Contact         `json:"emails,omitempty"`
	Comments          string            `json:"comments,omitempty"`
	CompanyTitle      string            `json:"company_title,omitempty"`
	Post              string            `json:"post,omitempty"`
	SourceDescription string            `json:"source_description,omitempty"`
	UTM               map[string]string `json:"utm,omitempty"`    // UTM_SOURCE → value
	Amount            string            `json:"amount,omitempty"` // decimal, "1500.50"
	Currency          string            `json:"currency,omitempty"`
	Custom            map[string]any    `json:"custom,omitempty"` // UF_CRM_* → string or []string
	// Responsible is the user the post asked to be the lead's owner, or zero.
	Responsible int64 `json:"responsible,omitempty"`
}

// Contact is a phone number or e-mail address with its Bitrix24 VALUE_TYPE
// (WORK, MOBILE, HOME, ...).
type Contact struct {
	Value string `json:"value"`
	Type  string `json:"type"`
}

// Limits on text fields, in characters.
const (
	maxShortText = 255
	maxComments  = 20000
	maxContacts  = 10
)

// fieldKind is what a known post field becomes.
type fieldKind int

const (
	kindTitle fieldKind = iota
	kindName
	kindSecondName
	kindLastName
	kindPhone
	kindEmail
	kindComments
	kindCompany
	kindPost
	kindSourceDescription
	kindUTM
	kindAmount
	kindCurrency
	kindResponsible
)

// fieldNames maps the lower-cased names landing pages, ad platforms and Bitrix24's
// own crm.lead.add use to what they mean.
var fieldNames = map[string]fieldKind{
	"title": kindTitle, "name": kindName, "first_name": kindName, "firstname": kindName,
	"full_name": kindName, "fullname": kindName, "fio": kindName,
	"second_name": kindSecondName, "middle_name": kindSecondName,
	"last_name": kindLastName, "lastname": kindLastName, "surname": kindLastName,
	"phone": kindPhone, "phone_number": kindPhone, "tel": kindPhone, "telephone": kindPhone,
	"email": kindEmail, "e-mail": kindEmail, "mail": kindEmail,
	"comment": kindComments, "comments": kindComments, "message": kindComments,
	"company": kindCompany, "company_title": kindCompany, "company_name": kindCompany,
	"post": kindPost, "position": kindPost, "job_title": kindPost,
	"source_description": kindSourceDescription,
	"utm_source":         kindUTM, "utm_medium": kindUTM, "utm_campaign": kindUTM,
	"utm_content": kindUTM, "utm_term": kindUTM,
	"amount": kindAmount, "opportunity": kindAmount, "price": kindAmount, "sum": kindAmount,
	"currency": kindCurrency, "currency_id": kindCurrency,
	"responsible": kindResponsible, "assigned_by_id": kindResponsible,
}

var customField = regexp.MustCompile(`^UF_CRM_[A-Z0-9_]{1,60}$`)

// builder collects a Post and the problems found on the way.
type builder struct {
	post Post
	errs FieldErrors
	seen map[fieldKind]string // which post field set a single-valued lead field
}

func newBuilder() *builder {
	return &builder{errs: FieldErrors{}, seen: map[fieldKind]string{}}
}

// field reads the post field called name (shown in errors as label).
func (b *builder) field(label, name string, val any) {
	lower := strings.ToLower(strings.TrimSpace(name))
	kind, known := fieldNames[lower]
	if !known {
		if up := strings.ToUpper(lower); strings.HasPrefix(up, "UF_CRM_") {
			b.custom(label, up, val)
			return
		}
		b.post.Ignored = append(b.post.Ignored, label)
		return
	}
	if val == nil {
		return
	}
	lead := &b.post.Lead
	switch kind {
	case kindPhone:
		lead.Phones = append(lead.Phones, b.contacts(label, val, checkPhone)...)
		return
	case kindEmail:
		lead.Emails = append(lead.Emails, b.contacts(label, val, checkEmail)...)
		return
	case kindUTM:
		if lead.UTM == nil {
			lead.UTM = map[string]string{}
		}
		b.utm(label, strings.ToUpper(lower), val)
		return
	}
	if first, dup := b.seen[kind]; dup {
		b.errs[label] = "given twice (also as " + first + ")"
		return
	}
	b.seen[kind] = label
	b.single(kind, label, val)
}

// single reads a field that holds one value.
func (b *builder) single(kind fieldKind, label string, val any) {
	lead := &b.post.Lead
	s := b.text(label, val)
	switch kind {
	case kindTitle:
		lead.Title = b.short(label, s)
	case kindName:
		lead.Name = b.short(label, s)
	case kindSecondName:
		lead.SecondName = b.short(label, s)
	case kindLastName:
		lead.LastName = b.short(label, s)
	case kindCompany:
		lead.CompanyTitle = b.short(label, s)
	case kindPost:
		lead.Post = b.short(label, s)
	case kindSourceDescription:
		lead.SourceDescription = b.short(label, s)
	case kindComments:
		if utf8.RuneCountInString(s) > maxComments {
			b.errs[label] = fmt.Sprintf("longer than %d characters", maxComments)
		}
		lead.Comments = s
	case kindAmount:
		lead.Amount = b.amount(label, s)
	case kindCurrency:
		lead.Currency = b.currency(label, s)
	case kindResponsible:
		lead.Responsible = b.userID(label, s)
	}
}

func (b *builder) utm(label, key string, val any) {
	if _, dup := b.post.Lead.UTM[key]; dup {
		b.errs[label] = "given twice"
		return
	}
	b.post.Lead.UTM[key] = b.short(label, b.text(label, val))
}

// text reads a value that must be one string, number or boolean.
func (b *builder) text(label string, val any) string {
	switch v := val.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		if len(v) == 1 {
			return b.text(label, v[0])
		}
	}
	b.errs[label] = "not a single text value"
	return ""
}

func (b *builder) short(label, s string) string {
	if utf8.RuneCountInString(s) > maxShortText {
		b.errs[label] = fmt.Sprintf("longer than %d characters", maxShortText)
	}
	return s
}

// contacts reads a phone or e-mail field: a string, a list of strings, or
// Bitrix24's list of {VALUE, VALUE_TYPE}.
func (b *builder) contacts(label string, val any, check func(string) string) []Contact {
	var items []any
	switch v := val.(type) {
	case []any:
		items = v
	default:
		items = []any{v}
	}
	var out []Contact
	for _, item := range items {
		c := Contact{Type: "WORK"}
		if m, ok := item.(map[string]any); ok {
			for k, v := range m {
				switch strings.ToUpper(k) {
				case "VALUE":
					c.Value = b.text(label, v)
				case "VALUE_TYPE":
					c.Type = strings.ToUpper(b.text(label, v))
				}
			}
		} else {
			c.Value = b.text(label, item)
		}
		if c.Value == "" {
			continue
		}
		if msg := check(c.Value); msg != "" {
			b.errs[label] = msg
			continue
		}
		if !valueType.MatchString(c.Type) {
			b.errs[label] = "not a value type (like WORK or MOBILE)"
			continue
		}
		out = append(out, c)
	}
	if len(out) > maxContacts {
		b.errs[label] = fmt.Sprintf("more than %d values", maxContacts)
	}
	return out
}

var valueType = regexp.MustCompile(`^[A-Z_]{1,20}$`)

// checkPhone accepts what people type as a phone number: 5 to 15 digits, spaces,
// dashes, dots, brackets and one leading plus.
func checkPhone(s string) string {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return "not a phone number"
		}
	}
	if digits < 5 || digits > 15 {
		return "not a phone number"
	}
	return ""
}

func checkEmail(s string) string {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || len(s) > maxShortText {
		return "not an e-mail address"
	}
	at := strings.LastIndexByte(s, '@')
	if !strings.Contains(s[at+1:], ".") {
		return "not an e-mail address"
	}
	return ""
}

func (b *builder) amount(label, s string) string {
	if s == "" {
		return ""
	}
	clean := strings.NewReplacer(" ", "", "\u00a0", "").Replace(s)
	if !strings.Contains(clean, ".") {
		clean = strings.Replace(clean, ",", ".", 1)
	}
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e15 {
		b.errs[label] = "not an amount (like 1500.50)"
		return ""
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

var currencyCode = regexp.MustCompile(`^[A-Za-z]{3}$`)

func (b *builder) currency(label, s string) string {
	if s == "" {
		return ""
	}
	if !currencyCode.MatchString(s) {
		b.errs[label] = "not a currency code (like USD)"
		return ""
	}
	return strings.ToUpper(s)
}

func (b *builder) userID(label, s string) int64 {
	if s == "" {
		return 0
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		b.errs[label] = "not a user ID"
		return 0
	}
	return id
}

// custom reads a user field UF_CRM_*: one value or a list of values.
func (b *builder) custom(label, code string, val any) {
	if !customField.MatchString(code) {
		b.errs[label] = "not a custom field code (like UF_CRM_1700000000)"
		return
	}
	if b.post.Lead.Custom == nil {
		b.post.Lead.Custom = map[string]any{}
	}
	if _, dup := b.post.Lead.Custom[code]; dup {
		b.errs[label] = "given twice"
		return
	}
	if list, ok := val.([]any); ok && len(list) != 1 {
		vals := make([]string, 0, len(list))
		for _, v := range list {
			vals = append(vals, b.short(label, b.text(label, v)))
		}
		b.post.Lead.Custom[code] = vals
		return
	}
	b.post.Lead.Custom[code] = b.short(label, b.text(label, val))
}

// finish checks the lead as a whole and returns the post or its errors.
func (b *builder) finish() (*Post, error) {
	lead := &b.post.Lead
	if lead.Name == "" && lead.LastName == "" && len(lead.Phones) == 0 &&
		len(lead.Emails) == 0 && len(b.errs) == 0 {
		b.errs["contact"] = "at least one of name, phone, email is required"
	}
	if len(b.post.IdempotencyKey) > 200 {
		b.errs["idempotency_key"] = "longer than 200 characters"
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	sort.Strings(b.post.Ignored)
	return &b.post, nil
}

// Fields returns the lead as crm.lead.add fields, for the source src: SOURCE_ID
// is the source's CRM source and SOURCE_DESCRIPTION, unless the post gave one, the
// source's name. Owner is the responsible person chosen; zero leaves it to the
// portal.
func (l *Lead) Fields(src *Source, owner int64) map[string]any {
	f := map[string]any{
		"TITLE":     l.title(src),
		"SOURCE_ID": src.Options.CRMSource,
	}
	set := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	set("NAME", l.Name)
	set("SECOND_NAME", l.SecondName)
	set("LAST_NAME", l.LastName)
	set("COMMENTS", l.Comments)
	set("COMPANY_TITLE", l.CompanyTitle)
	set("POST", l.Post)
	set("SOURCE_DESCRIPTION", l.SourceDescription)
	if l.SourceDescription == "" {
		set("SOURCE_DESCRIPTION", src.Name) // rules can match the intake URL by its name
	}
	set("OPPORTUNITY", l.Amount)
	set("CURRENCY_ID", l.Currency)
	for k, v := range l.UTM {
		set(k, v)
	}
	for k, v := range l.Custom {
		f[k] = v
	}
	if len(l.Phones) > 0 {
		f["PHONE"] = multiField(l.Phones)
	}
	if len(l.Emails) > 0 {
		f["EMAIL"] = multiField(l.Emails)
	}
	if owner > 0 {
		f["ASSIGNED_BY_ID"] = owner
	}
	return f
}

// title is the lead's TITLE: the post's own, or the source's name and the person's.
func (l *Lead) title(src *Source) string {
	if l.Title != "" {
		return l.Title
	}
	who := strings.TrimSpace(l.Name + " " + l.LastName)
	if who == "" {
		return src.Name
	}
	return src.Name + ": " + who
}

func multiField(cs []Contact) []map[string]string {
	out := make([]map[string]string, len(cs))
	for i, c := range cs {
		out[i] = map[string]string{"VALUE": c.Value, "VALUE_TYPE": c.Type}
	}
	return out
}
