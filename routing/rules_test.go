package routing

import (
	"strings"
	"testing"
)

func TestConditionHolds(t *testing.T) {
	t.Parallel()
	lead := &Lead{
		Fields: map[string]string{
			"SOURCE_ID":       "WEB",
			"STATUS_ID":       "NEW",
			"OPPORTUNITY":     "1500.00",
			"CURRENCY_ID":     "RUB",
			"TITLE":           "Order from the site: Bulk Cement",
			"COMMENTS":        "call after 6pm",
			"ADDRESS_CITY":    "Kazan",
			"ADDRESS_REGION":  "Tatarstan",
			"ADDRESS_COUNTRY": "Russia",
			"UTM_SOURCE":      "yandex",
			"UTM_CAMPAIGN":    "winter-2026",
			"UF_CRM_SIZE":     "42",
			"UF_CRM_BUDGET":   "2 500,50|RUB",
			"UF_CRM_TAGS":     "b2b, wholesale",
			"UF_CRM_EMPTY":    "",
			"INTAKE_SOURCE":   "5f0ce91a",
		},
		Phones: []string{"+7 999 000-00-01"},
		Emails: []string{"buyer@example.com"},
	}
	tests := []struct {
		name string
		c    Condition
		want bool
	}{
		{"source equals", cond("SOURCE_ID", OpEquals, "web"), true},
		{"intake source equals", cond("INTAKE_SOURCE", OpEquals, "5f0ce91a"), true},
		{"intake source other", cond("INTAKE_SOURCE", OpEquals, "0000"), false},
		{"source equals other", cond("SOURCE_ID", OpEquals, "CALL"), false},
		{"status not equals", cond("STATUS_ID", OpNotEquals, "JUNK"), true},
		{"status not equals same", cond("STATUS_ID", OpNotEquals, "NEW"), false},
		{"source in", cond("SOURCE_ID", OpIn, "", "CALL", " WEB"), true},
		{"source in miss", cond("SOURCE_ID", OpIn, "", "CALL"), false},
		{"source not in", cond("SOURCE_ID", OpNotIn, "", "CALL"), true},
		{"source not in hit", cond("SOURCE_ID", OpNotIn, "", "WEB"), false},
		{"title contains", cond("TITLE", OpContains, "cement"), true},
		{"title contains miss", cond("TITLE", OpContains, "sand"), false},
		{"comment not contains", cond("COMMENTS", OpNotContains, "urgent"), true},
		{"comment not contains hit", cond("COMMENTS", OpNotContains, "6PM"), false},
		{"title starts with", cond("TITLE", OpStartsWith, "order"), true},
		{"title starts with miss", cond("TITLE", OpStartsWith, "bulk"), false},
		{"amount gt", cond("OPPORTUNITY", OpGreater, "1000"), true},
		{"amount gt equal", cond("OPPORTUNITY", OpGreater, "1500"), false},
		{"amount gte", cond("OPPORTUNITY", OpGreaterEq, "1500"), true},
		{"amount lt", cond("OPPORTUNITY", OpLess, "1500.01"), true},
		{"amount lt equal", cond("OPPORTUNITY", OpLess, "1500"), false},
		{"amount lte", cond("OPPORTUNITY", OpLessEq, "1500"), true},
		{"amount between", cond("OPPORTUNITY", OpBetween, "", "1000", "2000"), true},
		{"amount between bounds", cond("OPPORTUNITY", OpBetween, "1500", "1500"), true},
		{"amount between miss", cond("OPPORTUNITY", OpBetween, "", "1", "2"), false},
		{"amount in currency", money(OpGreater, "1000", "rub"), true},
		{"amount other currency", money(OpGreater, "1000", "USD"), false},
		{"text is not a number", cond("TITLE", OpGreater, "0"), false},
		{"region equals", cond("ADDRESS_REGION", OpEquals, "TATARSTAN"), true},
		{"city in", cond("ADDRESS_CITY", OpIn, "", "Moscow", "Kazan"), true},
		{"country not equals", cond("ADDRESS_COUNTRY", OpNotEquals, "Russia"), false},
		{"utm source", cond("UTM_SOURCE", OpEquals, "Yandex"), true},
		{"utm campaign starts", cond("UTM_CAMPAIGN", OpStartsWith, "winter"), true},
		{"utm missing is empty", cond("UTM_TERM", OpEmpty, ""), true},
		{"custom number", cond("UF_CRM_SIZE", OpGreaterEq, "42"), true},
		{"custom money", cond("UF_CRM_BUDGET", OpBetween, "", "2500", "2501"), true},
		{"custom list contains", cond("UF_CRM_TAGS", OpContains, "wholesale"), true},
		{"custom empty", cond("UF_CRM_EMPTY", OpEmpty, ""), true},
		{"custom not empty", cond("UF_CRM_EMPTY", OpNotEmpty, ""), false},
		{"title not empty", cond("TITLE", OpNotEmpty, ""), true},
		{"title matches", cond("TITLE", OpMatches, `^order.*cement$`), true},
		{"title matches miss", cond("TITLE", OpMatches, `^\d+$`), false},
		{"phone matches", cond("PHONE", OpMatches, `^\+7 999`), true},
		{"email contains", cond("EMAIL", OpContains, "@example.com"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Settings{Rules: []Rule{{Conditions: []Condition{tt.c}}}}
			if err := s.validateCondition(); err != nil {
				t.Fatalf("condition %+v is invalid: %v", tt.c, err)
			}
			if got := tt.c.holds(lead, compilePatterns(s)); got != tt.want {
				t.Errorf("holds(%+v) = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
}

// cond returns a condition on a field.
func cond(field, op, value string, values ...string) Condition {
	return Condition{Field: field, Op: op, Value: value, Values: values}
}

// money returns a condition on the amount in a currency.
func money(op, value, currency string) Condition {
	return Condition{Field: "OPPORTUNITY", Op: op, Value: value, Currency: currency}
}

// validateCondition validates the conditions of the first rule alone.
func (s *Settings) validateCondition() error {
	v := &validator{fields: map[string]string{}}
	for i := range s.Rules[0].Conditions {
		v.condition(&s.Rules[0].Conditions[i], "c")
	}
	if len(v.fields) > 0 {
		return &ValidationError{Fields: v.fields}
	}
	return nil
}

func TestRuleMatchesAllOrAny(t *testing.T) {
	t.Parallel()
	lead := &Lead{Fields: map[string]string{"SOURCE_ID": "WEB", "ADDRESS_CITY": "Kazan"}}
	web := cond("SOURCE_ID", OpEquals, "WEB")
	moscow := cond("ADDRESS_CITY", OpEquals, "Moscow")
	tests := []struct {
		name string
		rule Rule
		want bool
	}{
		{"all hold", Rule{Conditions: []Condition{web}}, true},
		{"all, one fails", Rule{Conditions: []Condition{web, moscow}}, false},
		{"any, one holds", Rule{Any: true, Conditions: []Condition{moscow, web}}, true},
		{"any, none holds", Rule{Any: true, Conditions: []Condition{moscow}}, false},
		{"disabled", Rule{Disabled: true, Conditions: []Condition{web}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.matches(lead, nil); got != tt.want {
				t.Errorf("matches() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRulesPickTheFirstMatch checks rule order through a whole decision.
func TestRulesPickTheFirstMatch(t *testing.T) {
	t.Parallel()
	s := &Settings{
		Teams: []Team{
			{ID: "web", Name: "Web", Strategy: RoundRobin, Members: []Member{{UserID: 1}}},
			{ID: "big", Name: "Big deals", Strategy: RoundRobin, Members: []Member{{UserID: 2}}},
		},
		Rules: []Rule{
			{ID: "big", Name: "Big deals", Target: Target{Kind: TargetTeam, Team: "big"},
				Conditions: []Condition{{Field: "OPPORTUNITY", Op: OpGreaterEq, Value: "100000"}}},
			{ID: "web", Name: "Site", Target: Target{Kind: TargetTeam, Team: "web"},
				Conditions: []Condition{{Field: "SOURCE_ID", Op: OpEquals, Value: "WEB"}}},
			{ID: "boss", Name: "Partners", Target: Target{Kind: TargetPerson, User: 3},
				Conditions: []Condition{{Field: "SOURCE_ID", Op: OpEquals, Value: "PARTNER"}}},
		},
		Default: Target{Kind: TargetHold},
	}
	tests := []struct {
		name     string
		fields   map[string]string
		outcome  Outcome
		user     int64
		rule     string
		contains string
	}{
		{"first rule wins", map[string]string{"SOURCE_ID": "WEB", "OPPORTUNITY": "200000"},
			Assigned, 2, "big", `rule “Big deals”`},
		{"second rule", map[string]string{"SOURCE_ID": "WEB", "OPPORTUNITY": "10"},
			Assigned, 1, "web", `rule “Site”`},
		{"fixed person", map[string]string{"SOURCE_ID": "PARTNER"},
			Assigned, 3, "boss", "Assigned to Gleb: named in the settings"},
		{"default holds", map[string]string{"SOURCE_ID": "CALL"},
			Held, 0, "", "Held as the settings ask; no rule matched"},
	}
	dir := people("Anna", "Boris", "Gleb")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := simulateOne(s, ledger{}, &Lead{ID: 1, Fields: tt.fields}, dir, monday10,
				compilePatterns(s), nil)
			if d.Outcome != tt.outcome || d.UserID != tt.user || d.RuleID != tt.rule {
				t.Errorf("decision = %s user %d rule %q, want %s user %d rule %q",
					d.Outcome, d.UserID, d.RuleID, tt.outcome, tt.user, tt.rule)
			}
			if text := d.Trace.Text("en"); !strings.Contains(text, tt.contains) {
				t.Errorf("Text() = %q, want it to contain %q", text, tt.contains)
			}
		})
	}
}
