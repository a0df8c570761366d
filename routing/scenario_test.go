package routing

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// scenario is a random portal for property tests: people, teams, rules and a stream
// of leads over clock ticks during which the people's facts change.
type scenario struct {
	rng      *rand.Rand
	settings *Settings
	dir      Directory
	now      time.Time
	zones    []string
	// singleTeam keeps every person in one team and lets existing owners in only
	// when they are members, so that each person's caps are unambiguous.
	singleTeam bool
}

func newScenario(seed uint64, singleTeam bool) *scenario {
	sc := &scenario{
		rng:        rand.New(rand.NewPCG(seed, 7)),
		now:        monday10,
		zones:      []string{"", "Europe/Moscow", "Asia/Vladivostok", "America/New_York"},
		singleTeam: singleTeam,
	}
	sc.dir = Directory{People: map[int64]Person{}, Lang: "en"}
	n := 3 + sc.rng.IntN(7)
	for id := int64(1); id <= int64(n); id++ {
		sc.dir.People[id] = Person{ID: id, Name: fmt.Sprintf("Person %d", id), Active: true,
			Timeman: TimemanOpened, TimeZone: sc.zones[sc.rng.IntN(len(sc.zones))]}
	}
	sc.settings = sc.randomSettings(n)
	return sc
}

func (sc *scenario) randomSettings(n int) *Settings {
	r := sc.rng
	s := &Settings{ExistingClient: ExistingClient{Enabled: r.IntN(2) == 0,
		MembersOnly: sc.singleTeam || r.IntN(2) == 0}}
	teams := 1 + r.IntN(3)
	for i := range teams {
		t := Team{ID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("Team %d", i),
			Strategy: strategies[r.IntN(len(strategies))], RequireClockIn: r.IntN(2) == 0}
		t.BreakCounts = t.RequireClockIn && r.IntN(2) == 0
		if r.IntN(3) == 0 {
			t.Schedule = &Schedule{Days: []int{1, 2, 3, 4, 5}, From: "09:00", To: "18:00"}
		}
		s.Teams = append(s.Teams, t)
	}
	for id := int64(1); id <= int64(n); id++ {
		homes := []int{r.IntN(teams)}
		if id <= int64(teams) {
			homes[0] = int(id - 1) // every team has somebody
		}
		if !sc.singleTeam && r.IntN(3) == 0 {
			homes = append(homes, r.IntN(teams))
		}
		for _, h := range homes {
			if s.Teams[h].member(id) != nil {
				continue
			}
			m := Member{UserID: id, Weight: 1 + r.IntN(5)}
			if r.IntN(2) == 0 {
				m.DailyCap = 1 + r.IntN(8)
			}
			if r.IntN(2) == 0 {
				m.OpenCap = 1 + r.IntN(6)
			}
			if r.IntN(4) == 0 {
				m.Schedule = &Schedule{Days: []int{1, 2, 3, 4, 5, 6}, From: "22:00", To: "06:00",
					TimeZone: sc.zones[1+r.IntN(len(sc.zones)-1)]}
			}
			m.Paused = r.IntN(10) == 0
			s.Teams[h].Members = append(s.Teams[h].Members, m)
		}
	}
	for i := range s.Teams {
		switch k := r.IntN(3); {
		case k == 0 && i+1 < teams:
			s.Teams[i].Fallback = Target{Kind: TargetTeam, Team: s.Teams[i+1].ID}
		case k == 1 && !sc.singleTeam:
			s.Teams[i].Fallback = Target{Kind: TargetPerson, User: 1 + int64(r.IntN(n))}
		}
	}
	s.Default = Target{Kind: TargetTeam, Team: "t0"}
	// The rule's ID has characters the script must escape in its JSON answer.
	s.Rules = []Rule{{ID: "web \"site\" \\ \t ñ", Name: "Web", Conditions: []Condition{
		{Field: "SOURCE_ID", Op: OpEquals, Value: "WEB"}},
		Target: Target{Kind: TargetTeam, Team: s.Teams[teams-1].ID}}}
	if !sc.singleTeam {
		s.Rules = append(s.Rules, Rule{ID: "vip", Name: "VIP", Conditions: []Condition{
			{Field: "OPPORTUNITY", Op: OpGreaterEq, Value: "100000"}},
			Target: Target{Kind: TargetPerson, User: 1}})
	}
	return s
}

// tick moves the clock on and changes some people's facts.
func (sc *scenario) tick() {
	r := sc.rng
	sc.now = sc.now.Add(time.Duration(r.IntN(120)) * time.Minute)
	for id, p := range sc.dir.People {
		if r.IntN(8) != 0 {
			continue
		}
		switch r.IntN(4) {
		case 0:
			p.Active = r.IntN(5) != 0
		case 1:
			p.AbsentUntil = time.Time{}
			if r.IntN(2) == 0 {
				p.AbsentUntil = sc.now.Add(time.Duration(1+r.IntN(72)) * time.Hour)
			}
		case 2:
			p.Timeman = []string{TimemanOpened, TimemanPaused, TimemanClosed, ""}[r.IntN(4)]
		}
		sc.dir.People[id] = p
	}
}

// lead returns a random lead with the ID id.
func (sc *scenario) lead(id int64) Lead {
	r := sc.rng
	l := Lead{ID: id, Fields: map[string]string{
		"SOURCE_ID":   []string{"WEB", "CALL", "EMAIL"}[r.IntN(3)],
		"OPPORTUNITY": fmt.Sprint(r.IntN(200000)),
	}}
	if r.IntN(4) == 0 {
		l.ExistingOwner = 1 + int64(r.IntN(len(sc.dir.People)))
	}
	return l
}
