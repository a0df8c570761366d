package routing

import (
	"regexp"
	"strconv"
	"strings"
)

// maxMatchInput is how much of a field a regular expression looks at.
const maxMatchInput = 10_000

// leadFields are the standard lead fields a condition may test.
var leadFields = map[string]bool{
	"SOURCE_ID": true, "SOURCE_DESCRIPTION": true, "STATUS_ID": true,
	"OPPORTUNITY": true, "CURRENCY_ID": true, "TITLE": true, "COMMENTS": true,
	"NAME": true, "LAST_NAME": true, "COMPANY_TITLE": true, "POST": true,
	"ADDRESS": true, "ADDRESS_CITY": true, "ADDRESS_REGION": true,
	"ADDRESS_PROVINCE": true, "ADDRESS_COUNTRY": true, "ADDRESS_POSTAL_CODE": true,
	"PHONE": true, "EMAIL": true,
	// INTAKE_SOURCE is the ID of the intake webhook a lead was posted to; empty for
	// leads from anywhere else.
	"INTAKE_SOURCE": true,
}

// knownField reports whether a condition may test the field.
func knownField(f string) bool {
	return leadFields[f] || strings.HasPrefix(f, "UTM_") && len(f) > 4 ||
		strings.HasPrefix(f, "UF_CRM_") && len(f) > 7
}

// patterns holds the compiled regular expressions of one settings version.
type patterns map[string]*regexp.Regexp

// compilePatterns compiles every "matches" condition of valid settings.
func compilePatterns(s *Settings) patterns {
	p := patterns{}
	for _, r := range s.Rules {
		for _, c := range r.Conditions {
			if c.Op == OpMatches {
				if re, err := regexp.Compile("(?i)" + c.Value); err == nil {
					p[c.Value] = re
				}
			}
		}
	}
	return p
}

// value returns the lead's value of a field.
func (l *Lead) value(field string) string {
	switch field {
	case "PHONE":
		return strings.Join(l.Phones, ", ")
	case "EMAIL":
		return strings.Join(l.Emails, ", ")
	}
	return strings.TrimSpace(l.Fields[field])
}

// matches reports whether the rule selects the lead.
func (r *Rule) matches(l *Lead, p patterns) bool {
	if r.Disabled || len(r.Conditions) == 0 {
		return false
	}
	for i := range r.Conditions {
		ok := r.Conditions[i].holds(l, p)
		if r.Any && ok {
			return true
		}
		if !r.Any && !ok {
			return false
		}
	}
	return !r.Any
}

// holds reports whether the condition holds for the lead. Text comparisons ignore
// case; numeric ones are false when the field is not a number.
func (c *Condition) holds(l *Lead, p patterns) bool {
	v := l.value(c.Field)
	lv := strings.ToLower(v)
	switch c.Op {
	case OpEquals:
		return strings.EqualFold(v, c.Value)
	case OpNotEquals:
		return !strings.EqualFold(v, c.Value)
	case OpIn:
		return inList(v, c.Values)
	case OpNotIn:
		return !inList(v, c.Values)
	case OpContains:
		return strings.Contains(lv, strings.ToLower(c.Value))
	case OpNotContains:
		return !strings.Contains(lv, strings.ToLower(c.Value))
	case OpStartsWith:
		return strings.HasPrefix(lv, strings.ToLower(c.Value))
	case OpEmpty:
		return v == ""
	case OpNotEmpty:
		return v != ""
	case OpMatches:
		re := p[c.Value]
		if re == nil {
			return false
		}
		if len(v) > maxMatchInput {
			v = v[:maxMatchInput]
		}
		return re.MatchString(v)
	}
	return c.compare(l, v)
}

// compare evaluates the numeric operators.
func (c *Condition) compare(l *Lead, v string) bool {
	if c.Currency != "" && !strings.EqualFold(l.value("CURRENCY_ID"), c.Currency) {
		return false
	}
	n, err := parseNumber(v)
	if err != nil {
		return false
	}
	if c.Op == OpBetween {
		lo, hi, err := c.bounds()
		return err == nil && n >= lo && n <= hi
	}
	x, err := parseNumber(c.Value)
	if err != nil {
		return false
	}
	switch c.Op {
	case OpGreater:
		return n > x
	case OpGreaterEq:
		return n >= x
	case OpLess:
		return n < x
	case OpLessEq:
		return n <= x
	}
	return false
}

func inList(v string, list []string) bool {
	for _, x := range list {
		if strings.EqualFold(v, strings.TrimSpace(x)) {
			return true
		}
	}
	return false
}

// parseNumber parses an amount as Bitrix24 and people write it: "1500", "1500.00",
// "1 500,50". A value with a currency suffix ("1500|RUB", as money custom fields
// store it) keeps only the number.
func parseNumber(s string) (float64, error) {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "|")
	s = strings.NewReplacer(" ", "", "\u00a0", "", ",", ".").Replace(s)
	return strconv.ParseFloat(s, 64)
}
