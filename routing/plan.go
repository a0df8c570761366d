package routing

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// plan is everything the decision script needs for one lead: the chain of steps to
// try (an existing client's owner, a fixed person, a team and its fallbacks) with
// every candidate's facts found in Go. It is sent to the script as JSON, and the
// simulation runs it through the Go ledger; both follow the same algorithm.
type plan struct {
	Lead  int64  `json:"lead"`
	Now   int64  `json:"now"`          // Unix milliseconds
	Ver   int    `json:"ver"`          // settings version the plan was built from
	TTL   int64  `json:"ttl"`          // seconds the decision is kept for idempotency
	Round int    `json:"g,omitempty"`  // re-route round (Lead.Round)
	Pass  bool   `json:"ps,omitempty"` // a pass after a missed deadline (Lead.PassTeam)
	Rule  string `json:"rule,omitempty"`
	Hold  string `json:"hold"` // why the lead is held when no step assigns it
	Steps []step `json:"steps"`
}

// Kinds of plan steps.
const (
	stepOwner  = "owner"  // the existing client's owner, no turn spent
	stepPerson = "person" // a fixed person chosen by a rule or fallback
	stepTeam   = "team"   // a team's strategy
)

// Reasons a lead is held.
const (
	HoldTarget     = "target"      // a rule or the default says to hold
	HoldNoEligible = "no_eligible" // nobody in the chain is eligible
)

type step struct {
	Kind      string  `json:"k"`
	Team      string  `json:"t,omitempty"`
	Strategy  string  `json:"s,omitempty"`
	MaxStreak int     `json:"ms,omitempty"`
	R         float64 `json:"r,omitempty"` // uniform random number in [0,1) for Random
	Members   []slot  `json:"m"`
}

// slot is a candidate as the script sees it.
type slot struct {
	ID   int64  `json:"id"`
	W    int    `json:"w,omitempty"`
	DC   int    `json:"dc,omitempty"` // daily cap, 0 = none
	OC   int    `json:"oc,omitempty"` // open-lead cap, 0 = none
	Day  int    `json:"day"`          // YYYYMMDD in the person's time zone
	Skip string `json:"skip,omitempty"`
	Arg  string `json:"a,omitempty"`
}

// result is the outcome of a plan, produced by the script (and stored for the lead)
// or by the Go ledger in the same shape.
type result struct {
	Outcome  string     `json:"o"` // "assigned" or "held"
	User     int64      `json:"id,omitempty"`
	Step     int        `json:"step"`
	How      string     `json:"how,omitempty"`
	Pos      int        `json:"pos,omitempty"`
	Open     int        `json:"open,omitempty"`
	Since    int64      `json:"since,omitempty"`
	Rule     string     `json:"rule,omitempty"`
	Ver      int        `json:"ver"`
	Hold     string     `json:"hold,omitempty"`
	Path     list[hop]  `json:"path,omitempty"`
	Skips    list[skip] `json:"skips,omitempty"`
	Released bool       `json:"rel,omitempty"`
	Round    int        `json:"g,omitempty"`  // the plan's re-route round
	Pass     bool       `json:"ps,omitempty"` // the plan's Pass
}

// hop is one step the decision tried.
type hop struct {
	Kind string `json:"k"`
	Team string `json:"t,omitempty"`
}

// skip is a candidate passed over, and why.
type skip struct {
	Step int    `json:"step"`
	ID   int64  `json:"id"`
	Code string `json:"code"`
	Arg  string `json:"a,omitempty"`
	N    int    `json:"n,omitempty"`
	Cap  int    `json:"cap,omitempty"`
}

// list is a JSON array that also accepts {}, which is how Lua's cjson encodes an
// empty table.
type list[T any] []T

// UnmarshalJSON implements json.Unmarshaler.
func (l *list[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "{}" {
		*l = nil
		return nil
	}
	return json.Unmarshal(b, (*[]T)(l))
}

// Reasons a lead is not routed at all.
const (
	NotConfigured = "not_configured" // the portal never saved settings
	NotInSources  = "source"         // its source is not among the routed ones
	NotAssignedTo = "assignee"       // it does not arrive assigned to a routed user
	NotManualKept = "manual"         // somebody chose its responsible by hand
	NotPassedOn   = "kept"           // missed its deadline, but nobody else can take it
)

// scopeReason returns why the lead is outside the settings' scope, or "".
func (s *Settings) scopeReason(l *Lead) string {
	switch s.Scope.Mode {
	case ScopeSources:
		if !inList(l.value("SOURCE_ID"), s.Scope.Sources) {
			return NotInSources
		}
	}
	if l.Round > 0 {
		return "" // the responsible is the one routing chose before
	}
	if s.Scope.Mode == ScopeAssignedTo && !slices.Contains(s.Scope.Users, l.AssignedByID) {
		return NotAssignedTo
	}
	if s.Scope.KeepManual && l.AssignedByID != 0 && l.CreatedByID != 0 &&
		l.AssignedByID != l.CreatedByID && !slices.Contains(s.Scope.Users, l.AssignedByID) {
		return NotManualKept
	}
	return ""
}

// match returns the target for the lead and the ID of the rule that chose it ("" for
// the default).
func (s *Settings) match(l *Lead, p patterns) (Target, string) {
	for i := range s.Rules {
		if s.Rules[i].matches(l, p) {
			return s.Rules[i].Target, s.Rules[i].ID
		}
	}
	return s.Default, ""
}

// buildPlan resolves the lead's chain of steps and checks every candidate against the
// directory. rnd supplies the random numbers of Random teams.
func (s *Settings) buildPlan(l *Lead, dir Directory, now time.Time, p patterns,
	rnd func() float64) plan {
	pl := s.chain(l, dir, now, p, rnd)
	for si := range pl.Steps {
		for mi := range pl.Steps[si].Members {
			if sl := &pl.Steps[si].Members[mi]; slices.Contains(l.Exclude, sl.ID) {
				sl.Skip, sl.Arg = SkipMissedDeadline, ""
			}
		}
	}
	return pl
}

// chain resolves the lead's steps: the team it is passed on in, or the steps its
// rule or the default leads to.
func (s *Settings) chain(l *Lead, dir Directory, now time.Time, p patterns,
	rnd func() float64) plan {
	if l.PassTeam != "" {
		pl := plan{Lead: l.ID, Now: now.UnixMilli(), Pass: true, Hold: NotPassedOn,
			Steps: []step{}}
		if t := s.team(l.PassTeam); t != nil {
			pl.Steps = append(pl.Steps, teamStep(t, dir, now, rnd))
		}
		return pl
	}
	target, rule := s.match(l, p)
	pl := plan{Lead: l.ID, Now: now.UnixMilli(), Rule: rule, Hold: HoldNoEligible,
		Steps: []step{}}
	if l.ExistingOwner != 0 && s.ExistingClient.Enabled {
		var t *Team
		var m *Member
		if target.Kind == TargetTeam {
			if t = s.team(target.Team); t != nil {
				m = t.member(l.ExistingOwner)
			}
		}
		if m != nil || !s.ExistingClient.MembersOnly {
			pl.Steps = append(pl.Steps, step{Kind: stepOwner, Team: target.Team,
				Members: []slot{slotFor(l.ExistingOwner, dir, m, t, now)}})
		}
	}
	visited := map[string]bool{}
	for {
		switch target.Kind {
		case TargetTeam:
			t := s.team(target.Team)
			if t == nil || visited[t.ID] {
				return pl
			}
			visited[t.ID] = true
			pl.Steps = append(pl.Steps, teamStep(t, dir, now, rnd))
			target = t.Fallback
			continue
		case TargetPerson:
			pl.Steps = append(pl.Steps, step{Kind: stepPerson,
				Members: []slot{slotFor(target.User, dir, nil, nil, now)}})
		default:
			if len(visited) == 0 {
				pl.Hold = HoldTarget
			}
		}
		return pl
	}
}

// teamStep builds the step of one team.
func teamStep(t *Team, dir Directory, now time.Time, rnd func() float64) step {
	st := step{Kind: stepTeam, Team: t.ID, Strategy: t.Strategy}
	if t.Strategy == LeastLoaded {
		st.MaxStreak = t.maxStreak()
	}
	if t.Strategy == Random {
		st.R = rnd()
	}
	for i := range t.Members {
		st.Members = append(st.Members, slotFor(t.Members[i].UserID, dir, &t.Members[i], t, now))
	}
	return st
}

// slotFor checks one person and returns their slot; m and t may be nil.
func slotFor(userID int64, dir Directory, m *Member, t *Team, now time.Time) slot {
	p, known := dir.People[userID]
	p.ID = userID
	c := check(p, known, m, t, now)
	sl := slot{ID: userID, Day: c.Day, Skip: c.Skip, Arg: c.Arg}
	if m != nil {
		sl.W, sl.DC, sl.OC = m.weight(), m.DailyCap, m.OpenCap
	}
	return sl
}

// personField is the ledger field of a person.
func personField(id int64) string { return "u" + strconv.FormatInt(id, 10) }
