package routing

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxPatternLength is the longest regular expression a "matches" condition may hold.
const MaxPatternLength = 200

// Limits on the size of settings, so that one portal cannot make decisions slow.
const (
	maxTeams      = 50
	maxMembers    = 200
	maxRules      = 200
	maxConditions = 20
	maxWeight     = 100
)

// ValidationError lists what is wrong with settings, one message per field path
// (for example "teams[0].members[2].weight"), in words a portal administrator
// understands.
type ValidationError struct {
	Fields map[string]string
}

// Error returns the messages, sorted by path, on one line.
func (e *ValidationError) Error() string {
	paths := make([]string, 0, len(e.Fields))
	for p := range e.Fields {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	parts := make([]string, len(paths))
	for i, p := range paths {
		parts[i] = p + ": " + e.Fields[p]
	}
	return "invalid settings: " + strings.Join(parts, "; ")
}

// validator collects messages keyed by path.
type validator struct{ fields map[string]string }

func (v *validator) add(path, format string, args ...any) {
	if _, ok := v.fields[path]; !ok {
		v.fields[path] = fmt.Sprintf(format, args...)
	}
}

// Validate checks the settings and returns a *ValidationError listing every problem,
// or nil.
func (s *Settings) Validate() error {
	v := &validator{fields: map[string]string{}}
	v.scope(&s.Scope)
	v.teams(s)
	if len(s.Rules) > maxRules {
		v.add("rules", "At most %d rules are allowed.", maxRules)
	}
	ruleIDs := map[string]bool{}
	for i := range s.Rules {
		r := &s.Rules[i]
		path := fmt.Sprintf("rules[%d]", i)
		if r.ID == "" {
			v.add(path+".id", "Every rule needs an identifier.")
		} else if ruleIDs[r.ID] {
			v.add(path+".id", "Another rule already uses the identifier %q.", r.ID)
		}
		ruleIDs[r.ID] = true
		v.rule(s, r, path)
	}
	v.target(s, s.Default, "default")
	v.reroute(&s.Reroute)
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

func (v *validator) scope(sc *Scope) {
	switch sc.Mode {
	case "", ScopeAll:
	case ScopeSources:
		if len(sc.Sources) == 0 {
			v.add("scope.sources", "Choose at least one source whose leads should be routed.")
		}
	case ScopeAssignedTo:
		if len(sc.Users) == 0 {
			v.add("scope.users", "Choose the user that new leads arrive assigned to.")
		}
		for i, id := range sc.Users {
			if id <= 0 {
				v.add(fmt.Sprintf("scope.users[%d]", i), "Choose a user.")
			}
		}
	default:
		v.add("scope.mode", "Choose which leads to route: all, some sources, "+
			"or those assigned to a given user.")
	}
}

// maxRerouteStatuses bounds the statuses that route a lead again.
const maxRerouteStatuses = 50

func (v *validator) reroute(r *Reroute) {
	if len(r.Statuses) > maxRerouteStatuses {
		v.add("reroute.statuses", "At most %d statuses may route a lead again.",
			maxRerouteStatuses)
	}
	seen := map[string]bool{}
	for i, st := range r.Statuses {
		path := fmt.Sprintf("reroute.statuses[%d]", i)
		switch {
		case strings.TrimSpace(st) == "":
			v.add(path, "Choose the status that routes a lead again.")
		case seen[st]:
			v.add(path, "The status %q is listed twice.", st)
		}
		seen[st] = true
	}
}

func (v *validator) teams(s *Settings) {
	if len(s.Teams) > maxTeams {
		v.add("teams", "At most %d teams are allowed.", maxTeams)
	}
	ids := map[string]bool{}
	for i := range s.Teams {
		t := &s.Teams[i]
		path := fmt.Sprintf("teams[%d]", i)
		switch {
		case t.ID == "":
			v.add(path+".id", "Every team needs an identifier.")
		case ids[t.ID]:
			v.add(path+".id", "Another team already uses the identifier %q.", t.ID)
		case strings.ContainsAny(t.ID, " \t\n:{}"):
			v.add(path+".id", "A team identifier may not contain spaces, colons or braces.")
		}
		ids[t.ID] = true
		if strings.TrimSpace(t.Name) == "" {
			v.add(path+".name", "Give the team a name.")
		}
		if !slices.Contains(strategies, t.Strategy) {
			v.add(path+".strategy", "Choose how the team shares leads: round robin, weighted, "+
				"random, least loaded, longest waiting or first available.")
		}
		if t.MaxStreak < 0 {
			v.add(path+".max_streak", "The number of leads in a row cannot be negative.")
		}
		if !t.RequireClockIn && t.BreakCounts {
			v.add(path+".break_counts", "A break only matters when the team requires "+
				"people to be clocked in.")
		}
		v.deadline(t.Deadline, path+".deadline")
		v.schedule(t.Schedule, path+".schedule")
		v.members(t, path)
		v.target(s, t.Fallback, path+".fallback")
		if t.Fallback.Kind == TargetTeam && t.Fallback.Team == t.ID {
			v.add(path+".fallback.team", "A team cannot fall back to itself.")
		}
	}
}

func (v *validator) deadline(d *Deadline, path string) {
	if d == nil {
		return
	}
	if d.Minutes < MinDeadlineMinutes || d.Minutes > MaxDeadlineMinutes {
		v.add(path+".minutes", "The time to take a lead up must be a whole number of "+
			"minutes from %d to %d (a day).", MinDeadlineMinutes, MaxDeadlineMinutes)
	}
	if d.MaxPasses < 0 || d.MaxPasses > maxMembers {
		v.add(path+".max_passes", "The number of passes must be a whole number from 0 "+
			"(until everyone had the lead) to %d.", maxMembers)
	}
}

func (v *validator) members(t *Team, path string) {
	if len(t.Members) == 0 {
		v.add(path+".members", "Add at least one person to the team.")
	}
	if len(t.Members) > maxMembers {
		v.add(path+".members", "A team can have at most %d people.", maxMembers)
	}
	seen := map[int64]bool{}
	for j := range t.Members {
		m := &t.Members[j]
		mp := fmt.Sprintf("%s.members[%d]", path, j)
		if m.UserID <= 0 {
			v.add(mp+".user_id", "Choose a person.")
		} else if seen[m.UserID] {
			v.add(mp+".user_id", "This person is already in the team.")
		}
		seen[m.UserID] = true
		if m.Weight < 0 || m.Weight > maxWeight {
			v.add(mp+".weight", "The weight must be a whole number from 1 to %d.", maxWeight)
		}
		if m.DailyCap < 0 {
			v.add(mp+".daily_cap", "The daily limit cannot be negative; leave it empty "+
				"for no limit.")
		}
		if m.OpenCap < 0 {
			v.add(mp+".open_cap", "The limit of open leads cannot be negative; leave it "+
				"empty for no limit.")
		}
		v.schedule(m.Schedule, mp+".schedule")
	}
}

func (v *validator) schedule(sc *Schedule, path string) {
	if sc == nil {
		return
	}
	if len(sc.Days) == 0 {
		v.add(path+".days", "Choose at least one working day.")
	}
	for k, d := range sc.Days {
		if d < 1 || d > 7 {
			v.add(fmt.Sprintf("%s.days[%d]", path, k), "Days go from 1 (Monday) to 7 (Sunday).")
		}
	}
	from, errFrom := parseClock(sc.From)
	if errFrom != nil {
		v.add(path+".from", "Write the start of the working day as HH:MM, for example 09:00.")
	}
	to, errTo := parseClock(sc.To)
	if errTo != nil {
		v.add(path+".to", "Write the end of the working day as HH:MM, for example 18:00.")
	}
	if errFrom == nil && errTo == nil && from == to {
		v.add(path+".to", "The working day must end at a different time than it starts.")
	}
	if sc.TimeZone != "" {
		if _, err := time.LoadLocation(sc.TimeZone); err != nil {
			v.add(path+".time_zone", "Unknown time zone %q; use a name such as "+
				"Europe/Moscow.", sc.TimeZone)
		}
	}
}

func (v *validator) target(s *Settings, t Target, path string) {
	switch t.Kind {
	case "", TargetHold:
	case TargetTeam:
		if s.team(t.Team) == nil {
			v.add(path+".team", "Choose one of the teams.")
		}
	case TargetPerson:
		if t.User <= 0 {
			v.add(path+".user", "Choose a person.")
		}
	default:
		v.add(path+".kind", "Send the lead to a team, to a person, or hold it.")
	}
}

func (v *validator) rule(s *Settings, r *Rule, path string) {
	if strings.TrimSpace(r.Name) == "" {
		v.add(path+".name", "Give the rule a name.")
	}
	if len(r.Conditions) == 0 {
		v.add(path+".conditions", "Add at least one condition.")
	}
	if len(r.Conditions) > maxConditions {
		v.add(path+".conditions", "A rule can have at most %d conditions.", maxConditions)
	}
	for k := range r.Conditions {
		v.condition(&r.Conditions[k], fmt.Sprintf("%s.conditions[%d]", path, k))
	}
	if r.Target.Kind == "" {
		v.add(path+".target.kind", "Choose where the rule sends the lead.")
	}
	v.target(s, r.Target, path+".target")
}

func (v *validator) condition(c *Condition, path string) {
	if !knownField(c.Field) {
		v.add(path+".field", "Choose a lead field: source, status, amount, currency, title, "+
			"comment, address, a UTM field or a custom field (UF_CRM_…).")
	}
	switch c.Op {
	case OpEquals, OpNotEquals, OpContains, OpNotContains, OpStartsWith:
		if c.Value == "" {
			v.add(path+".value", "Enter a value to compare with.")
		}
	case OpIn, OpNotIn:
		if len(c.Values) == 0 {
			v.add(path+".values", "Enter at least one value.")
		}
	case OpGreater, OpGreaterEq, OpLess, OpLessEq:
		if _, err := parseNumber(c.Value); err != nil {
			v.add(path+".value", "Enter a number, for example 1500 or 99.90.")
		}
	case OpBetween:
		lo, hi, err := c.bounds()
		if err != nil {
			v.add(path+".values", "Enter two numbers: the lower and the upper bound.")
		} else if lo > hi {
			v.add(path+".values", "The lower bound must not be greater than the upper one.")
		}
	case OpEmpty, OpNotEmpty:
	case OpMatches:
		switch {
		case c.Value == "":
			v.add(path+".value", "Enter a regular expression.")
		case len(c.Value) > MaxPatternLength:
			v.add(path+".value", "The expression is too long: at most %d characters.",
				MaxPatternLength)
		default:
			if _, err := regexp.Compile("(?i)" + c.Value); err != nil {
				v.add(path+".value", "This is not a valid regular expression.")
			}
		}
	default:
		v.add(path+".op", "Choose how to compare the field.")
	}
	if c.Currency != "" && c.Field != "OPPORTUNITY" {
		v.add(path+".currency", "A currency only applies to the amount (OPPORTUNITY).")
	}
}

// bounds returns the numeric bounds of a between condition.
func (c *Condition) bounds() (lo, hi float64, err error) {
	vals := c.Values
	if c.Value != "" {
		vals = append([]string{c.Value}, c.Values...)
	}
	if len(vals) != 2 {
		return 0, 0, fmt.Errorf("between needs two bounds, got %d", len(vals))
	}
	if lo, err = parseNumber(vals[0]); err != nil {
		return 0, 0, err
	}
	if hi, err = parseNumber(vals[1]); err != nil {
		return 0, 0, err
	}
	return lo, hi, nil
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("clock %q: want HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh*60+mm > 1440 {
		return 0, fmt.Errorf("clock %q: want HH:MM", s)
	}
	return hh*60 + mm, nil
}
