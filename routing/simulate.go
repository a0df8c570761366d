package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Report is what a simulation found: where the leads would go under draft settings.
type Report struct {
	Leads     int `json:"leads"`
	Assigned  int `json:"assigned"`
	Held      int `json:"held"`
	NotRouted int `json:"not_routed"`
	// PerPerson counts the leads each person would receive.
	PerPerson map[int64]int `json:"per_person"`
	// Skips counts how often candidates were passed over, by reason.
	Skips map[string]int `json:"skips"`
	// SkipsPerPerson counts, per person, how often they were passed over, by reason.
	SkipsPerPerson map[int64]map[string]int `json:"skips_per_person"`
	// Fallbacks counts leads that went past their first team.
	Fallbacks int `json:"fallbacks"`
	// PerRule counts matched leads by rule ID; "" is the default.
	PerRule map[string]int `json:"per_rule"`
	// Decisions are the decisions, in the order of the leads.
	Decisions []Decision `json:"decisions"`
}

// Simulate runs the leads through draft settings without touching live state: it
// starts from a copy of the portal's rotation ledger and decides each lead with the
// same algorithm as the decision script, in memory. A lead seen twice is decided once,
// except leads without an ID (made up on the settings page), which are all distinct.
// A lead's time is its DATE_CREATE
// field when that parses (RFC 3339, as Bitrix24 writes it), otherwise now. Random
// teams draw from a generator seeded by the leads, so a run can be repeated.
func (e *Engine) Simulate(ctx context.Context, memberID string, draft *Settings, leads []Lead,
	dir Directory, now time.Time) (*Report, error) {
	if draft == nil {
		return nil, &ValidationError{Fields: map[string]string{"": "The settings are empty."}}
	}
	if err := draft.Validate(); err != nil {
		return nil, err
	}
	live, err := e.rdb.HGetAll(ctx, keyspace.RoutingLedger(memberID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read rotation state of portal %s: %w", memberID, err)
	}
	return simulate(draft, ledger(live), leads, dir, now), nil
}

// simulate decides the leads one after another on the ledger l.
func simulate(s *Settings, l ledger, leads []Lead, dir Directory, now time.Time) *Report {
	rep := &Report{Leads: len(leads), PerPerson: map[int64]int{}, Skips: map[string]int{},
		SkipsPerPerson: map[int64]map[string]int{}, PerRule: map[string]int{}}
	var seed uint64
	for _, ld := range leads {
		seed = seed*31 + uint64(ld.ID)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(leads))))
	pats := compilePatterns(s)
	decided := map[int64]Decision{}
	for i := range leads {
		ld := &leads[i]
		if d, ok := decided[ld.ID]; ok && ld.ID != 0 {
			d.Repeated = true
			rep.Decisions = append(rep.Decisions, d)
			continue
		}
		d := simulateOne(s, l, ld, dir, leadTime(ld, now), pats, rng.Float64)
		if d.Outcome == Assigned {
			decided[ld.ID] = d
		}
		rep.add(d)
	}
	return rep
}

// simulateOne decides one lead in memory, as Decide does against Redis.
func simulateOne(s *Settings, l ledger, ld *Lead, dir Directory, at time.Time, pats patterns,
	rnd func() float64) Decision {
	c := &compiled{settings: s, version: 1, patterns: pats}
	if d, ok := notRouted(c, ld, dir); ok {
		d.SettingsVersion = 0
		return d
	}
	pl := s.buildPlan(ld, dir, at, pats, rnd)
	d := s.decision(l.decide(&pl), dir)
	d.SettingsVersion = 0
	return d
}

func (r *Report) add(d Decision) {
	r.Decisions = append(r.Decisions, d)
	switch d.Outcome {
	case Assigned:
		r.Assigned++
		r.PerPerson[d.UserID]++
	case Held:
		r.Held++
	case NotRouted:
		r.NotRouted++
		return
	}
	r.PerRule[d.RuleID]++
	fellBack := false
	for _, e := range d.Trace.Entries {
		switch e.Code {
		case CodeSkipped:
			reason := e.Params["reason"]
			r.Skips[reason]++
			var id int64
			fmt.Sscan(e.Params["user_id"], &id)
			if r.SkipsPerPerson[id] == nil {
				r.SkipsPerPerson[id] = map[string]int{}
			}
			r.SkipsPerPerson[id][reason]++
		case CodeFallback:
			fellBack = true
		}
	}
	if fellBack {
		r.Fallbacks++
	}
}

// leadTime returns when the lead arrived, from DATE_CREATE, or now.
func leadTime(l *Lead, now time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, l.Fields["DATE_CREATE"]); err == nil {
		return t
	}
	return now
}
