package routing

import (
	"slices"
	"time"
)

// Settings is one version of a portal's routing configuration: which leads to route,
// the teams, the ordered rules and what happens when no rule matches. The zero value
// routes nothing; it is what a portal that never saved settings has.
type Settings struct {
	// Scope says which new leads are routed at all.
	Scope Scope `json:"scope"`
	// Teams are the pools of people leads are distributed among.
	Teams []Team `json:"teams"`
	// Rules are tried in order; the first whose conditions hold picks the target.
	Rules []Rule `json:"rules"`
	// Default is the target of a lead no rule matches.
	Default Target `json:"default"`
	// ExistingClient gives a returning client's lead to the owner of their record.
	ExistingClient ExistingClient `json:"existing_client"`
	// Reroute routes a lead again when a person moves it (back) to one of the
	// listed statuses; the zero value never routes a lead twice.
	Reroute Reroute `json:"reroute,omitzero"`
}

// Reroute configures "route again on a move to a status", for leads that come
// back to the start of the funnel (a lead sent back to NEW gets a fresh owner).
type Reroute struct {
	// Statuses are the lead STATUS_ID values whose (re)entry routes the lead again.
	Statuses []string `json:"statuses,omitempty"`
}

// Enabled reports whether any status routes a lead again.
func (r Reroute) Enabled() bool { return len(r.Statuses) > 0 }

// Routes reports whether a move into status routes the lead again.
func (r Reroute) Routes(status string) bool {
	return status != "" && slices.Contains(r.Statuses, status)
}

// Scope modes.
const (
	ScopeAll        = "all"         // every new lead
	ScopeSources    = "sources"     // only leads whose SOURCE_ID is listed
	ScopeAssignedTo = "assigned_to" // only leads whose responsible is a listed (integration) user
)

// Scope selects the leads that are routed, so that a person's own choice of
// responsible is never overridden.
type Scope struct {
	// Mode is ScopeAll, ScopeSources or ScopeAssignedTo; empty means ScopeAll.
	Mode string `json:"mode"`
	// Sources are the SOURCE_ID values routed in ScopeSources mode.
	Sources []string `json:"sources,omitempty"`
	// Users are the responsible users whose leads are routed in ScopeAssignedTo mode.
	Users []int64 `json:"users,omitempty"`
	// KeepManual leaves alone a lead whose responsible differs from its creator:
	// somebody picked the responsible by hand.
	KeepManual bool `json:"keep_manual,omitempty"`
}

// Strategies of a team.
const (
	RoundRobin     = "round_robin"     // in the members' order, one after another
	Weighted       = "weighted"        // shares follow the weights, smoothly
	Random         = "random"          // at random, in proportion to the weights
	LeastLoaded    = "least_loaded"    // fewest open leads
	LongestWaiting = "longest_waiting" // longest time since the last lead
	FirstAvailable = "first_available" // the first eligible in priority order
)

var strategies = []string{RoundRobin, Weighted, Random, LeastLoaded, LongestWaiting, FirstAvailable}

// Team is a pool of people who share leads by one strategy.
type Team struct {
	// ID identifies the team in rules, fallbacks and the rotation ledger; keep it when
	// renaming the team, so the team's rotation continues.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Strategy is one of RoundRobin, Weighted, Random, LeastLoaded, LongestWaiting,
	// FirstAvailable.
	Strategy string   `json:"strategy"`
	Members  []Member `json:"members"`
	// RequireClockIn skips people whose working day (timeman) is not open.
	RequireClockIn bool `json:"require_clock_in,omitempty"`
	// BreakCounts lets a person on a break (timeman PAUSED) receive leads when
	// RequireClockIn is set.
	BreakCounts bool `json:"break_counts,omitempty"`
	// Schedule is the working schedule of members without their own; nil means always.
	Schedule *Schedule `json:"schedule,omitempty"`
	// Fallback is where the lead goes when nobody in the team is eligible;
	// the zero value holds the lead.
	Fallback Target `json:"fallback"`
	// MaxStreak bounds how many leads in a row one person may receive from a
	// LeastLoaded team while others are eligible (a returner's catch-up rate);
	// 0 means DefaultMaxStreak.
	MaxStreak int `json:"max_streak,omitempty"`
	// Deadline passes a lead on to the next person of the team when the person it
	// was given to has not taken it up in time; nil never passes a lead on.
	Deadline *Deadline `json:"deadline,omitempty"`
}

// Deadline is a team's response deadline: a lead the team assigned that its owner
// has not taken up within Minutes goes to the next eligible person of the team, who
// gets the same time, and so on. Taken up means the lead's status changed since it
// was assigned; a lead somebody gave to another person by hand is left alone.
type Deadline struct {
	// Minutes is the time to take a lead up, 1–1440.
	Minutes int `json:"minutes"`
	// MaxPasses is how many times one lead may be passed on; 0 means until every
	// eligible person of the team has had it once.
	MaxPasses int `json:"max_passes,omitempty"`
}

// Deadline bounds.
const (
	MinDeadlineMinutes = 1
	MaxDeadlineMinutes = 1440
)

// Window returns the time to take a lead up.
func (d *Deadline) Window() time.Duration { return time.Duration(d.Minutes) * time.Minute }

// Passes reports whether a lead already passed on passed times may be passed on
// once more.
func (d *Deadline) Passes(passed int) bool { return d.MaxPasses <= 0 || passed < d.MaxPasses }

// TeamDeadline returns the deadline of the team with the given ID, or nil when the
// team has none or is gone.
func (s *Settings) TeamDeadline(teamID string) *Deadline {
	if t := s.team(teamID); t != nil {
		return t.Deadline
	}
	return nil
}

// DefaultMaxStreak is the catch-up bound of a LeastLoaded team that sets none: a
// person back with no open leads gets every other lead until the loads even out.
const DefaultMaxStreak = 1

// Member is a person in a team.
type Member struct {
	UserID int64 `json:"user_id"`
	// Weight is the person's share in Weighted and Random teams (1–100); 0 means 1.
	Weight int `json:"weight,omitempty"`
	// DailyCap is the most leads a day, counted in the person's time zone; 0 = none.
	DailyCap int `json:"daily_cap,omitempty"`
	// OpenCap is the most open leads the person may hold; 0 = none.
	OpenCap int `json:"open_cap,omitempty"`
	// Schedule overrides the team's schedule for this person.
	Schedule *Schedule `json:"schedule,omitempty"`
	// Paused takes the person out of the rotation without removing them.
	Paused bool `json:"paused,omitempty"`
}

// Schedule is a weekly working schedule.
type Schedule struct {
	// Days are ISO weekdays, 1 = Monday … 7 = Sunday.
	Days []int `json:"days"`
	// From and To are "HH:MM"; To before From means a shift that ends the next day.
	From string `json:"from"`
	To   string `json:"to"`
	// TimeZone is an IANA name; empty means the person's time zone from Bitrix24,
	// or UTC when that is unknown.
	TimeZone string `json:"time_zone,omitempty"`
}

// Target kinds.
const (
	TargetTeam   = "team"
	TargetPerson = "person"
	TargetHold   = "hold"
)

// Target is where a rule, a default or a fallback sends a lead. The zero value holds
// the lead until somebody is eligible.
type Target struct {
	// Kind is TargetTeam, TargetPerson or TargetHold; empty means TargetHold.
	Kind string `json:"kind,omitempty"`
	Team string `json:"team,omitempty"`
	User int64  `json:"user,omitempty"`
}

// ExistingClient configures "existing client first".
type ExistingClient struct {
	// Enabled gives the lead to the owner of a matching contact, company or open lead
	// (Lead.ExistingOwner) when they are eligible, without spending their turn.
	Enabled bool `json:"enabled,omitempty"`
	// MembersOnly restricts this to owners who are members of the target team.
	MembersOnly bool `json:"members_only,omitempty"`
}

// Rule sends the leads its conditions select to a target.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Any makes the rule match when any condition holds; otherwise all must.
	Any        bool        `json:"any,omitempty"`
	Conditions []Condition `json:"conditions"`
	Target     Target      `json:"target"`
	Disabled   bool        `json:"disabled,omitempty"`
}

// Condition operators.
const (
	OpEquals      = "equals"
	OpNotEquals   = "not_equals"
	OpIn          = "in"
	OpNotIn       = "not_in"
	OpContains    = "contains"
	OpNotContains = "not_contains"
	OpStartsWith  = "starts_with"
	OpGreater     = "gt"
	OpGreaterEq   = "gte"
	OpLess        = "lt"
	OpLessEq      = "lte"
	OpBetween     = "between"
	OpEmpty       = "empty"
	OpNotEmpty    = "not_empty"
	OpMatches     = "matches"
)

// Condition tests one lead field.
type Condition struct {
	// Field is a lead field in Bitrix24's upper-case form (SOURCE_ID, OPPORTUNITY,
	// UTM_SOURCE, UF_CRM_…), or PHONE / EMAIL for the lead's contacts.
	Field string `json:"field"`
	Op    string `json:"op"`
	// Value is the operand of single-value operators; for OpBetween the lower bound.
	Value string `json:"value,omitempty"`
	// Values is the list of OpIn / OpNotIn; for OpBetween, Values[0] is the upper
	// bound when Value holds the lower one, or both bounds.
	Values []string `json:"values,omitempty"`
	// Currency restricts a numeric comparison of OPPORTUNITY to leads in this
	// currency (CURRENCY_ID).
	Currency string `json:"currency,omitempty"`
}

// Needs tells the pipeline which facts about people Decide will look at, so that it
// spends REST calls only on those.
type Needs struct {
	// People are every user the settings name; the pipeline supplies their records
	// (active, name) in Directory, together with the lead's ExistingOwner when it
	// looked one up. A person missing from Directory is skipped as unknown.
	People []int64
	// Absence asks for AbsentUntil of People.
	Absence bool
	// Timeman asks for the working-day status of People.
	Timeman bool
	// TimeZones asks for People's time zones (a schedule or daily cap uses them).
	TimeZones bool
	// ExistingOwner asks the pipeline to look up the owner of a matching client.
	ExistingOwner bool
	// Reroute lists the statuses whose (re)entry routes a lead again: the pipeline
	// must read a routed lead on its updates to see its status.
	Reroute []string
}

// Needs reports which facts Decide needs under these settings.
func (s *Settings) Needs() Needs {
	var n Needs
	add := func(id int64) {
		if id != 0 && !slices.Contains(n.People, id) {
			n.People = append(n.People, id)
		}
	}
	for ti := range s.Teams {
		t := &s.Teams[ti]
		for mi := range t.Members {
			m := &t.Members[mi]
			add(m.UserID)
			sched := m.effectiveSchedule(t)
			if m.DailyCap > 0 || sched != nil && sched.TimeZone == "" {
				n.TimeZones = true
			}
		}
		if t.RequireClockIn && len(t.Members) > 0 {
			n.Timeman = true
		}
		add(t.Fallback.User)
	}
	for _, r := range s.Rules {
		add(r.Target.User)
	}
	add(s.Default.User)
	n.Absence = len(n.People) > 0
	for _, id := range s.Scope.Users {
		add(id) // only named in the trace of a lead left alone
	}
	n.ExistingOwner = s.ExistingClient.Enabled
	n.Reroute = slices.Clone(s.Reroute.Statuses)
	slices.Sort(n.People)
	return n
}

// team returns the team with the given ID, or nil.
func (s *Settings) team(id string) *Team {
	for i := range s.Teams {
		if s.Teams[i].ID == id {
			return &s.Teams[i]
		}
	}
	return nil
}

// weight returns the member's weight with the default applied.
func (m *Member) weight() int {
	if m.Weight <= 0 {
		return 1
	}
	return m.Weight
}

// effectiveSchedule returns the member's schedule, or the team's.
func (m *Member) effectiveSchedule(t *Team) *Schedule {
	if m.Schedule != nil {
		return m.Schedule
	}
	return t.Schedule
}

// member returns the team's member with the user ID, or nil.
func (t *Team) member(userID int64) *Member {
	for i := range t.Members {
		if t.Members[i].UserID == userID {
			return &t.Members[i]
		}
	}
	return nil
}

// maxStreak returns the catch-up bound with the default applied.
func (t *Team) maxStreak() int {
	if t.MaxStreak <= 0 {
		return DefaultMaxStreak
	}
	return t.MaxStreak
}
