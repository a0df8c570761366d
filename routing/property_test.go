package routing

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// withinOneLead fails when any member's count is a lead or more away from its ideal
// share of n leads.
func withinOneLead(t *testing.T, label string, n int, weights, counts map[int64]int) {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	for id, w := range weights {
		ideal := float64(n) * float64(w) / float64(total)
		if math.Abs(float64(counts[id])-ideal) >= 1 {
			t.Fatalf("%s: after %d leads user %d has %d, ideal %.3f (weights %v)",
				label, n, id, counts[id], ideal, weights)
		}
	}
}

func randomWeights(r *rand.Rand) (*Settings, map[int64]int) {
	n := 2 + r.IntN(7)
	s := oneTeam(Weighted)
	weights := map[int64]int{}
	for id := int64(1); id <= int64(n); id++ {
		w := 1 + r.IntN(20)
		weights[id] = w
		s.Teams[0].Members = append(s.Teams[0].Members, Member{UserID: id, Weight: w})
	}
	return s, weights
}

func everyone(n int) Directory {
	d := Directory{People: map[int64]Person{}}
	for id := int64(1); id <= int64(n); id++ {
		d.People[id] = Person{ID: id, Name: fmt.Sprint(id), Active: true}
	}
	return d
}

// TestWeightedSharesWithinOneLead checks the weighted strategy's promise at every
// prefix: in memory over many weight sets, and through the decision script on a real
// redis-server over fewer.
func TestWeightedSharesWithinOneLead(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(42, 42))
	for trial := range 200 {
		s, weights := randomWeights(r)
		l, dir := ledger{}, everyone(len(weights))
		counts := map[int64]int{}
		for n := 1; n <= 500; n++ {
			d := simulateOne(s, l, &Lead{ID: int64(n)}, dir, monday10, nil, r.Float64)
			counts[d.UserID]++
			withinOneLead(t, fmt.Sprintf("memory trial %d", trial), n, weights, counts)
		}
	}
	rdb := realRedis(t)
	for trial := range 8 {
		s, weights := randomWeights(r)
		e := NewEngine(rdb, quietLog())
		member := fmt.Sprintf("weights%d", trial)
		if _, err := e.SaveSettings(context.Background(), member, s, 1); err != nil {
			t.Fatalf("SaveSettings() error = %v", err)
		}
		dir := everyone(len(weights))
		counts := map[int64]int{}
		for n := 1; n <= 300; n++ {
			d, err := e.Decide(context.Background(), member, Lead{ID: int64(n)}, dir, monday10)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			counts[d.UserID]++
			withinOneLead(t, fmt.Sprintf("redis trial %d", trial), n, weights, counts)
		}
	}
}

// oracle tracks, independently of the engine, what each person has received, and
// says whether a person may get a lead now.
type oracle struct {
	sc    *scenario
	daily map[string]int // user/day → leads
	open  map[int64]int
	owner map[int64]int64 // lead → user while open
}

func newOracle(sc *scenario) *oracle {
	return &oracle{sc: sc, daily: map[string]int{}, open: map[int64]int{},
		owner: map[int64]int64{}}
}

// home returns the only team and member record of a person (single-team scenarios).
func (o *oracle) home(id int64) (*Team, *Member) {
	for i := range o.sc.settings.Teams {
		if m := o.sc.settings.Teams[i].member(id); m != nil {
			return &o.sc.settings.Teams[i], m
		}
	}
	return nil, nil
}

func (o *oracle) zone(id int64) *time.Location {
	t, m := o.home(id)
	name := o.sc.dir.People[id].TimeZone
	if sc := m.effectiveSchedule(t); sc != nil && sc.TimeZone != "" {
		name = sc.TimeZone
	}
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func (o *oracle) dayKey(id int64) string {
	return fmt.Sprint(id, o.sc.now.In(o.zone(id)).Format("2006-01-02"))
}

// onShift reports whether a shift of the schedule started at most its length ago.
func onShift(sc *Schedule, now time.Time, loc *time.Location) bool {
	var fh, fm, th, tm int
	fmt.Sscanf(sc.From, "%d:%d", &fh, &fm)
	fmt.Sscanf(sc.To, "%d:%d", &th, &tm)
	length := time.Duration((th*60+tm)-(fh*60+fm)) * time.Minute
	if length <= 0 {
		length += 24 * time.Hour
	}
	local := now.In(loc)
	for back := 0; back <= 1; back++ {
		day := local.AddDate(0, 0, -back)
		start := time.Date(day.Year(), day.Month(), day.Day(), fh, fm, 0, 0, loc)
		wd := int(start.Weekday())
		if wd == 0 {
			wd = 7
		}
		for _, d := range sc.Days {
			if d == wd && !local.Before(start) && local.Before(start.Add(length)) {
				return true
			}
		}
	}
	return false
}

// eligible reports whether the person may receive a lead now, and why not.
func (o *oracle) eligible(id int64) (bool, string) {
	p := o.sc.dir.People[id]
	t, m := o.home(id)
	switch {
	case !p.Active:
		return false, "inactive"
	case p.AbsentUntil.After(o.sc.now):
		return false, "absent"
	case m.Paused:
		return false, "paused"
	case t.RequireClockIn && !(p.Timeman == TimemanOpened ||
		p.Timeman == TimemanPaused && t.BreakCounts):
		return false, "not clocked in (" + p.Timeman + ")"
	}
	if sc := m.effectiveSchedule(t); sc != nil && !onShift(sc, o.sc.now, o.zone(id)) {
		return false, "off shift"
	}
	if m.DailyCap > 0 && o.daily[o.dayKey(id)] >= m.DailyCap {
		return false, "daily cap"
	}
	if m.OpenCap > 0 && o.open[id] >= m.OpenCap {
		return false, "open cap"
	}
	return true, ""
}

func (o *oracle) assign(lead, id int64) {
	o.daily[o.dayKey(id)]++
	o.open[id]++
	o.owner[lead] = id
}

// chain lists the teams a lead with the target may reach.
func (o *oracle) chain(target Target) []*Team {
	var out []*Team
	seen := map[string]bool{}
	for target.Kind == TargetTeam && !seen[target.Team] {
		seen[target.Team] = true
		t := o.sc.settings.team(target.Team)
		out = append(out, t)
		target = t.Fallback
	}
	return out
}

// TestNoLeadToIneligibleAndCapsHold drives random portals over thousands of leads
// and clock ticks on a real redis-server, with leads closing now and then, and checks
// every decision against the oracle: the chosen person was eligible, caps were never
// exceeded, a held lead had nobody eligible, and a repeated lead changed nothing.
func TestNoLeadToIneligibleAndCapsHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := realRedis(t)
	assigned, held := 0, 0
	for seed := uint64(1); seed <= 10; seed++ {
		sc := newScenario(seed, true)
		o := newOracle(sc)
		member := fmt.Sprintf("prop%02d", seed)
		e := NewEngine(rdb, quietLog())
		if _, err := e.SaveSettings(ctx, member, sc.settings, 1); err != nil {
			t.Fatalf("seed %d: SaveSettings() error = %v", seed, err)
		}
		for i := int64(1); i <= 400; i++ {
			sc.tick()
			l := sc.lead(i)
			target, _ := sc.settings.match(&l, nil)
			chain := o.chain(target)
			var ok [64]bool
			var why [64]string
			for id := range sc.dir.People {
				ok[id], why[id] = o.eligible(id)
			}
			d, err := e.Decide(ctx, member, l, sc.dir, sc.now)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			switch d.Outcome {
			case Assigned:
				assigned++
				if !ok[d.UserID] {
					t.Fatalf("seed %d lead %d: given to user %d, who is %s; trace: %s",
						seed, i, d.UserID, why[d.UserID], d.Trace.Text("en"))
				}
				o.assign(i, d.UserID)
			case Held:
				held++
				for _, tm := range chain {
					for _, m := range tm.Members {
						if ok[m.UserID] {
							t.Fatalf("seed %d lead %d: held while user %d of %s was eligible; %s",
								seed, i, m.UserID, tm.ID, d.Trace.Text("en"))
						}
					}
				}
			default:
				t.Fatalf("seed %d lead %d: outcome %q", seed, i, d.Outcome)
			}
			if len(d.Trace.Entries) == 0 {
				t.Fatalf("seed %d lead %d: decision without a trace", seed, i)
			}
			if sc.rng.IntN(3) == 0 {
				o.release(t, e, member, sc.rng)
			}
			if sc.rng.IntN(10) == 0 {
				o.repeat(t, e, member, sc.rng.Int64N(i)+1)
			}
		}
	}
	if assigned < 1000 || held < 100 {
		t.Fatalf("assigned %d, held %d: the scenarios do not exercise both outcomes", assigned, held)
	}
}

// release closes a random open lead.
func (o *oracle) release(t *testing.T, e *Engine, member string, r *rand.Rand) {
	t.Helper()
	for lead, id := range o.owner {
		if err := e.Release(context.Background(), member, id, lead); err != nil {
			t.Fatalf("Release() error = %v", err)
		}
		// Releasing twice counts down once.
		if r.IntN(2) == 0 {
			if err := e.Release(context.Background(), member, id, lead); err != nil {
				t.Fatalf("Release() error = %v", err)
			}
		}
		o.open[id]--
		delete(o.owner, lead)
		return
	}
}

// repeat decides an earlier lead again: an assigned one must come back unchanged.
func (o *oracle) repeat(t *testing.T, e *Engine, member string, lead int64) {
	t.Helper()
	eligible := map[int64]bool{}
	for id := range o.sc.dir.People {
		eligible[id], _ = o.eligible(id)
	}
	d, err := e.Decide(context.Background(), member, Lead{ID: lead}, o.sc.dir, o.sc.now)
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if d.Outcome != Assigned {
		return // a held lead is decided afresh; the oracle checks it like any other
	}
	if owner, open := o.owner[lead]; open && (owner != d.UserID || !d.Repeated) {
		t.Fatalf("Decide(%d) again = user %d repeated %v, want user %d repeated",
			lead, d.UserID, d.Repeated, owner)
	}
	if _, known := o.owner[lead]; !known && !d.Repeated {
		// A lead first held, now assigned.
		if !eligible[d.UserID] {
			t.Fatalf("Decide(%d) again gave it to ineligible user %d", lead, d.UserID)
		}
		o.assign(lead, d.UserID)
	}
}
