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
		},
		Phones: []string{"+7 999 000-00-01"},
		Emails: []string{"buyer@example.com"},
	}
	tests := []struct {
		name string
		c    Condition
		want bool
	}{
		{"source equals", Condition{Field: "SOURCE_ID", Op: OpEquals, Value: "web"}, true},
		{"source equals other", Condition{Field: "SOURCE_ID", Op: OpEquals, Value: "CALL"}, false},
		{"status not equals", Condition{Field: "STATUS_ID", Op: OpNotEquals, Value: "JUNK"}, true},
		{"status not equals same", Condition{Field: "STATUS_ID", Op: OpNotEquals, Value: "NEW"}, false},
		{"source in", Condition{Field: "SOURCE_ID", Op: OpIn, Values: []string{"CALL", " WEB"}}, true},
		{"source in miss", Condition{Field: "SOURCE_ID", Op: OpIn, Values: []string{"CALL"}}, false},
		{"source not in", Condition{Field: "SOURCE_ID", Op: OpNotIn, Values: []string{"CALL"}}, true},
		{"source not in hit", Condition{Field: "SOURCE_ID", Op: OpNotIn, Values: []string{"WEB"}}, false},
		{"title contains", Condition{Field: "TITLE", Op: OpContains, Value: "cement"}, true},
		{"title contains miss", Condition{Field: "TITLE", Op: OpContains, Value: "sand"}, false},
		{"comment not contains", Condition{Field: "COMMENTS", Op: OpNotContains, Value: "urgent"}, true},
		{"comment not contains hit", Condition{Field: "COMMENTS", Op: OpNotContains, Value: "6PM"}, false},
		{"title starts with", Condition{Field: "TITLE", Op: OpStartsWith, Value: "order"}, true},
		{"title starts with miss", Condition{Field: "TITLE", Op: OpStartsWith, Value: "bulk"}, false},
		{"amount gt", Condition{Field: "OPPORTUNITY", Op: OpGreater, Value: "1000"}, true},
		{"amount gt equal", Condition{Field: "OPPORTUNITY", Op: OpGreater, Value: "1500"}, false},
		{"amount gte", Condition{Field: "OPPORTUNITY", Op: OpGreaterEq, Value: "1500"}, true},
		{"amount lt", Condition{Field: "OPPORTUNITY", Op: OpLess, Value: "1500.01"}, true},
		{"amount lt equal", Condition{Field: "OPPORTUNITY", Op: OpLess, Value: "1500"}, false},
		{"amount lte", Condition{Field: "OPPORTUNITY", Op: OpLessEq, Value: "1500"}, true},
		{"amount between", Condition{Field: "OPPORTUNITY", Op: OpBetween, Values: []string{"1000", "2000"}}, true},
		{"amount between bounds", Condition{Field: "OPPORTUNITY", Op: OpBetween, Value: "1500", Values: []string{"1500"}}, true},
		{"amount between miss", Condition{Field: "OPPORTUNITY", Op: OpBetween, Values: []string{"1", "2"}}, false},
		{"amount in currency", Condition{Field: "OPPORTUNITY", Op: OpGreater, Value: "1000", Currency: "rub"}, true},
		{"amount other currency", Condition{Field: "OPPORTUNITY", Op: OpGreater, Value: "1000", Currency: "USD"}, false},
		{"text is not a number", Condition{Field: "TITLE", Op: OpGreater, Value: "0"}, false},
		{"region equals", Condition{Field: "ADDRESS_REGION", Op: OpEquals, Value: "TATARSTAN"}, true},
		{"city in", Condition{Field: "ADDRESS_CITY", Op: OpIn, Values: []string{"Moscow", "Kazan"}}, true},
		{"country not equals", Condition{Field: "ADDRESS_COUNTRY", Op: OpNotEquals, Value: "Russia"}, false},
		{"utm source", Condition{Field: "UTM_SOURCE", Op: OpEquals, Value: "Yandex"}, true},
		{"utm campaign starts", Condition{Field: "UTM_CAMPAIGN", Op: OpStartsWith, Value: "winter"}, true},
		{"utm missing is empty", Condition{Field: "UTM_TERM", Op: OpEmpty}, true},
		{"custom number", Condition{Field: "UF_CRM_SIZE", Op: OpGreaterEq, Value: "42"}, true},
		{"custom money", Condition{Field: "UF_CRM_BUDGET", Op: OpBetween, Values: []string{"2500", "2501"}}, true},
		{"custom list contains", Condition{Field: "UF_CRM_TAGS", Op: OpContains, Value: "wholesale"}, true},
		{"custom empty", Condition{Field: "UF_CRM_EMPTY", Op: OpEmpty}, true},
		{"custom not empty", Condition{Field: "UF_CRM_EMPTY", Op: OpNotEmpty}, false},
		{"title not empty", Condition{Field: "TITLE", Op: OpNotEmpty}, true},
		{"title matches", Condition{Field: "TITLE", Op: OpMatches, Value: `^order.*cement$`}, true},
		{"title matches miss", Condition{Field: "TITLE", Op: OpMatches, Value: `^\d+$`}, false},
		{"phone matches", Condition{Field: "PHONE", Op: OpMatches, Value: `^\+7 999`}, true},
		{"email contains", Condition{Field: "EMAIL", Op: OpContains, Value: "@example.com"}, true},
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
	web := Condition{Field: "SOURCE_ID", Op: OpEquals, Value: "WEB"}
	moscow := Condition{Field: "ADDRESS_CITY", Op: OpEquals, Value: "Moscow"}
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
