package routing

import (
	"strconv"
	"time"
)

// Trace explains a decision: who was chosen and why, which rule applied, where the
// lead fell back, and who was skipped and why. Entries are structured for the
// settings page; Text renders them for people.
type Trace struct {
	Entries []TraceEntry `json:"entries"`
}

// TraceEntry is one fact of a decision: a code and its parameters (user_id, name,
// reason, until, n, cap, team, team_name, rule, rule_name, how, pos, open, since …).
// Times are RFC 3339 in the person's time zone.
type TraceEntry struct {
	Code   string            `json:"code"`
	Params map[string]string `json:"params,omitempty"`
}

// Trace entry codes.
const (
	CodeAssigned  = "assigned"   // user_id, name, how, pos, team, team_name, open, since
	CodeHeld      = "held"       // reason (HoldTarget or HoldNoEligible)
	CodeNotRouted = "not_routed" // reason (NotConfigured, NotInSources, …), source, name
	CodeRule      = "rule"       // rule, rule_name
	CodeNoRule    = "no_rule"    // no rule matched; the default target applied
	CodeFallback  = "fallback"   // team, team_name (the team that had nobody), to, to_name
	CodeSkipped   = "skipped"    // user_id, name, reason, until, n, cap
	CodePassed    = "passed"     // team, team_name, minutes: passed on after its deadline
)

// decision turns a script result into a Decision, with names from dir and from s
// (the current settings; a repeated decision may name teams of an older version).
func (s *Settings) decision(res result, dir Directory) Decision {
	d := Decision{Outcome: Held, RuleID: res.Rule, SettingsVersion: res.Ver}
	if res.Outcome == "assigned" {
		d.Outcome, d.UserID = Assigned, res.User
		if res.Step < len(res.Path) && res.Path[res.Step].Kind == stepTeam {
			d.TeamID = res.Path[res.Step].Team
		}
	}
	if res.Hold == NotPassedOn {
		d.Outcome = NotRouted
	}
	d.Trace.Entries = append(d.Trace.Entries, s.mainEntry(res, d, dir))
	if res.Pass {
		if d.Outcome == Assigned {
			d.Trace.Entries = append(d.Trace.Entries, s.passedEntry(d.TeamID))
		}
	} else if res.Rule != "" {
		d.Trace.Entries = append(d.Trace.Entries, TraceEntry{Code: CodeRule,
			Params: map[string]string{"rule": res.Rule, "rule_name": s.ruleName(res.Rule)}})
	} else {
		d.Trace.Entries = append(d.Trace.Entries, TraceEntry{Code: CodeNoRule})
	}
	last := len(res.Path) - 1
	if d.Outcome == Assigned {
		last = res.Step
	}
	for i := 1; i <= last && i < len(res.Path); i++ {
		prev, next := res.Path[i-1], res.Path[i]
		if prev.Kind != stepTeam {
			continue
		}
		p := map[string]string{"team": prev.Team, "team_name": s.teamName(prev.Team)}
		if next.Kind == stepTeam {
			p["to"], p["to_name"] = next.Team, s.teamName(next.Team)
		}
		if next.Kind == stepPerson && i == res.Step && d.Outcome == Assigned {
			p["to_user_id"] = strconv.FormatInt(res.User, 10)
			p["to_name"] = dir.name(res.User)
		}
		d.Trace.Entries = append(d.Trace.Entries, TraceEntry{Code: CodeFallback, Params: p})
	}
	seen := map[string]bool{}
	for _, sk := range res.Skips {
		key := strconv.FormatInt(sk.ID, 10) + sk.Code
		if seen[key] {
			continue
		}
		seen[key] = true
		d.Trace.Entries = append(d.Trace.Entries, skipEntry(sk, dir))
	}
	return d
}

// mainEntry is the first entry: who got the lead and how, or why it is held.
func (s *Settings) mainEntry(res result, d Decision, dir Directory) TraceEntry {
	if d.Outcome == NotRouted {
		p := map[string]string{"reason": NotPassedOn}
		if len(res.Path) > 0 {
			p["team"], p["team_name"] = res.Path[0].Team, s.teamName(res.Path[0].Team)
		}
		return TraceEntry{Code: CodeNotRouted, Params: p}
	}
	if d.Outcome != Assigned {
		reason := res.Hold
		if reason == "" {
			reason = HoldNoEligible
		}
		return TraceEntry{Code: CodeHeld, Params: map[string]string{"reason": reason}}
	}
	p := map[string]string{
		"user_id": strconv.FormatInt(res.User, 10),
		"name":    dir.name(res.User),
		"how":     res.How,
	}
	if d.TeamID != "" {
		p["team"], p["team_name"] = d.TeamID, s.teamName(d.TeamID)
	}
	if res.Pos > 0 {
		p["pos"] = strconv.Itoa(res.Pos)
	}
	if res.How == LeastLoaded {
		p["open"] = strconv.Itoa(res.Open)
	}
	if res.Since > 0 {
		p["since"] = dir.localTime(res.User, time.UnixMilli(res.Since)).Format(time.RFC3339)
	}
	return TraceEntry{Code: CodeAssigned, Params: p}
}

// passedEntry says that the lead was passed on in the team after its deadline.
func (s *Settings) passedEntry(teamID string) TraceEntry {
	p := map[string]string{"team": teamID, "team_name": s.teamName(teamID)}
	if dl := s.TeamDeadline(teamID); dl != nil {
		p["minutes"] = strconv.Itoa(dl.Minutes)
	}
	return TraceEntry{Code: CodePassed, Params: p}
}

func skipEntry(sk skip, dir Directory) TraceEntry {
	p := map[string]string{
		"user_id": strconv.FormatInt(sk.ID, 10),
		"name":    dir.name(sk.ID),
		"reason":  sk.Code,
	}
	switch sk.Code {
	case SkipAbsent:
		if sec, err := strconv.ParseInt(sk.Arg, 10, 64); err == nil {
			p["until"] = dir.localTime(sk.ID, time.Unix(sec, 0)).Format(time.RFC3339)
		}
	case SkipDailyCap, SkipOpenCap:
		p["n"], p["cap"] = strconv.Itoa(sk.N), strconv.Itoa(sk.Cap)
	}
	return TraceEntry{Code: CodeSkipped, Params: p}
}

// localTime returns t in the person's time zone.
func (d Directory) localTime(id int64, t time.Time) time.Time {
	return t.In(location(d.People[id].TimeZone))
}

func (s *Settings) teamName(id string) string {
	if t := s.team(id); t != nil && t.Name != "" {
		return t.Name
	}
	return id
}

func (s *Settings) ruleName(id string) string {
	for _, r := range s.Rules {
		if r.ID == id && r.Name != "" {
			return r.Name
		}
	}
	return id
}
