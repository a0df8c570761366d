package routing

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

func miniEngine(t *testing.T) (*Engine, redis.UniversalClient) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewEngine(rdb, quietLog()), rdb
}

// TestEverySkipReasonInTheTrace puts Anna first in a round-robin team in each
// situation that makes her ineligible, and checks the decision passes her over with
// the right reason, in both languages. Boris is always available.
func TestEverySkipReasonInTheTrace(t *testing.T) {
	t.Parallel()
	day := "20261207"
	tests := []struct {
		name   string
		person func(p *Person)
		member func(m *Member, t *Team)
		ledger string // Anna's ledger entry before the decision
		gone   bool   // Anna is missing from the directory
		reason string
		en, ru string
	}{
		{name: "unknown", gone: true, reason: SkipUnknown,
			en: "#1 — not found among the portal's users", ru: "#1 — нет среди пользователей портала"},
		{name: "dismissed", person: func(p *Person) { p.Active = false }, reason: SkipInactive,
			en: "Anna — dismissed or deactivated", ru: "Anna — уволен или деактивирован"},
		{name: "absent", person: func(p *Person) {
			p.AbsentUntil = time.Date(2026, 12, 12, 9, 0, 0, 0, time.UTC)
		}, reason: SkipAbsent,
			en: "Anna — absent until 12 December", ru: "Anna — отсутствует до 12 декабря"},
		{name: "clocked out", person: func(p *Person) { p.Timeman = TimemanClosed },
			member: func(m *Member, t *Team) { t.RequireClockIn = true }, reason: SkipClockedOut,
			en: "Anna — has not started the working day", ru: "Anna — рабочий день не начат"},
		{name: "never clocked in", person: func(p *Person) { p.Timeman = "" },
			member: func(m *Member, t *Team) { t.RequireClockIn = true }, reason: SkipClockedOut,
			en: "Anna — has not started the working day", ru: "Anna — рабочий день не начат"},
		{name: "on a break", person: func(p *Person) { p.Timeman = TimemanPaused },
			member: func(m *Member, t *Team) { t.RequireClockIn = true }, reason: SkipOnBreak,
			en: "Anna — on a break", ru: "Anna — перерыв"},
		{name: "off hours", member: func(m *Member, t *Team) {
			m.Schedule = &Schedule{Days: []int{1, 2, 3, 4, 5}, From: "14:00", To: "23:00",
				TimeZone: "Europe/Moscow"} // 13:00 in Moscow
		}, reason: SkipOffHours,
			en: "Anna — outside working hours", ru: "Anna — нерабочее время"},
		{name: "weekend", member: func(m *Member, t *Team) {
			t.Schedule = &Schedule{Days: []int{2, 3, 4, 5, 6}, From: "09:00", To: "18:00"}
			t.Members[1].Schedule = &Schedule{Days: []int{1}, From: "00:00", To: "24:00"}
		}, reason: SkipOffHours,
			en: "Anna — outside working hours", ru: "Anna — нерабочее время"},
		{name: "paused", member: func(m *Member, t *Team) { m.Paused = true }, reason: SkipPaused,
			en: "Anna — paused", ru: "Anna — на паузе"},
		{name: "daily cap", member: func(m *Member, t *Team) { m.DailyCap = 15 },
			ledger: "0:0:" + day + ":15:0", reason: SkipDailyCap,
			en: "Anna — at 15 of 15 leads today", ru: "Anna — 15 из 15 лидов за сегодня"},
		{name: "open cap", member: func(m *Member, t *Team) { m.OpenCap = 3 },
			ledger: "0:0:20261201:9:3", reason: SkipOpenCap,
			en: "Anna — at 3 of 3 open leads", ru: "Anna — 3 из 3 открытых лидов"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, rdb := miniEngine(t)
			s := oneTeam(RoundRobin, 1, 2)
			if tt.member != nil {
				tt.member(&s.Teams[0].Members[0], &s.Teams[0])
			}
			save(t, e, s)
			dir := people("Anna", "Boris")
			if tt.gone {
				delete(dir.People, 1)
			} else if tt.person != nil {
				p := dir.People[1]
				tt.person(&p)
				dir.People[1] = p
			}
			if tt.ledger != "" {
				rdb.HSet(context.Background(), keyspace.RoutingLedger(portal), "u1", tt.ledger)
			}
			d := decide(t, e, 1, dir, monday10)
			if d.UserID != 2 {
				t.Fatalf("Decide() gave the lead to %d, want Boris (2): %s", d.UserID, d.Trace.Text("en"))
			}
			var reasons []string
			for _, en := range d.Trace.Entries {
				if en.Code == CodeSkipped {
					reasons = append(reasons, en.Params["reason"])
				}
			}
			if len(reasons) != 1 || reasons[0] != tt.reason {
				t.Errorf("skip reasons = %v, want [%s]", reasons, tt.reason)
			}
			if got := d.Trace.Text("en"); !strings.Contains(got, "; skipped: "+tt.en+".") {
				t.Errorf("Text(en) = %q, want it to end with %q", got, tt.en)
			}
			if got := d.Trace.Text("ru"); !strings.Contains(got, "; пропущены: "+tt.ru+".") {
				t.Errorf("Text(ru) = %q, want it to end with %q", got, tt.ru)
			}
		})
	}
}

// TestEligibleSituations checks situations that must not skip anybody.
func TestEligibleSituations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		person func(p *Person)
		team   func(t *Team)
		at     time.Time
	}{
		{name: "break counts as working", person: func(p *Person) { p.Timeman = TimemanPaused },
			team: func(t *Team) { t.RequireClockIn, t.BreakCounts = true, true }, at: monday10},
		{name: "clock-in not required", person: func(p *Person) { p.Timeman = TimemanClosed },
			at: monday10},
		{name: "absence over", person: func(p *Person) { p.AbsentUntil = monday10 }, at: monday10},
		{name: "night shift after midnight", team: func(t *Team) {
			// Sunday 22:00 to Monday 06:00 in Vladivostok; Monday 02:00 there.
			t.Schedule = &Schedule{Days: []int{7}, From: "22:00", To: "06:00",
				TimeZone: "Asia/Vladivostok"}
		}, at: time.Date(2026, 12, 6, 16, 0, 0, 0, time.UTC)},
		{name: "person's own time zone", person: func(p *Person) { p.TimeZone = "America/New_York" },
			team: func(t *Team) {
				t.Schedule = &Schedule{Days: []int{1}, From: "04:00", To: "06:00"} // 05:00 there
			}, at: monday10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := oneTeam(FirstAvailable, 1)
			if tt.team != nil {
				tt.team(&s.Teams[0])
			}
			dir := people("Anna")
			if tt.person != nil {
				p := dir.People[1]
				tt.person(&p)
				dir.People[1] = p
			}
			d := simulateOne(s, ledger{}, &Lead{ID: 1}, dir, tt.at, nil, nil)
			if d.Outcome != Assigned {
				t.Errorf("Decide() = %s, want assigned: %s", d.Outcome, d.Trace.Text("en"))
			}
		})
	}
}

// TestDailyCapFollowsThePersonsDay checks that a daily cap starts over at midnight in
// the person's time zone, not in UTC.
func TestDailyCapFollowsThePersonsDay(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	s := oneTeam(FirstAvailable, 1)
	s.Teams[0].Members[0].DailyCap = 1
	save(t, e, s)
	dir := people("Anna")
	p := dir.People[1]
	p.TimeZone = "Asia/Vladivostok" // UTC+10
	dir.People[1] = p
	steps := []struct {
		at   time.Time
		want Outcome
	}{
		{time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Assigned},  // 20:00 local
		{time.Date(2026, 12, 7, 13, 30, 0, 0, time.UTC), Held},     // 23:30 local
		{time.Date(2026, 12, 7, 14, 30, 0, 0, time.UTC), Assigned}, // 00:30 next day
	}
	for i, st := range steps {
		d := decide(t, e, int64(i+1), dir, st.at)
		if d.Outcome != st.want {
			t.Fatalf("lead %d at %s: %s, want %s: %s", i+1, st.at, d.Outcome, st.want,
				d.Trace.Text("en"))
		}
	}
}

// TestTraceTells checks whole sentences for the main kinds of decision.
func TestTraceTells(t *testing.T) {
	t.Parallel()
	twoTeams := func() *Settings {
		s := oneTeam(RoundRobin, 1, 2, 3)
		s.Teams[0].Members[1].DailyCap = 15
		s.Teams = append(s.Teams, Team{ID: "support", Name: "Support", Strategy: FirstAvailable,
			Members: []Member{{UserID: 4}}})
		s.Rules = []Rule{{ID: "web", Name: "Web forms", Target: s.Default,
			Conditions: []Condition{{Field: "SOURCE_ID", Op: OpEquals, Value: "WEB"}}}}
		return s
	}
	absent := func(d Directory, ids ...int64) {
		for _, id := range ids {
			p := d.People[id]
			p.AbsentUntil = time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC)
			d.People[id] = p
		}
	}
	tests := []struct {
		name   string
		setup  func(s *Settings, d Directory, l ledger)
		lead   Lead
		en, ru string
	}{
		{
			name: "second in turn",
			setup: func(s *Settings, d Directory, l ledger) {
				absent(d, 1)
				l["u2"] = "0:0:20261207:15:0"
			},
			lead: Lead{ID: 7, Fields: map[string]string{"SOURCE_ID": "WEB"}},
			en: "Assigned to Vera Petrova: third in turn in team “Sales”; rule “Web forms”; " +
				"skipped: Anna Smirnova — absent until 12 December, Boris Ivanov — at 15 of 15 " +
				"leads today.",
			ru: "Ответственный: Vera Petrova — по очереди, № 3 в команде «Sales»; правило " +
				"«Web forms»; пропущены: Anna Smirnova — отсутствует до 12 декабря, " +
				"Boris Ivanov — 15 из 15 лидов за сегодня.",
		},
		{
			name: "fallback to another team",
			setup: func(s *Settings, d Directory, l ledger) {
				s.Teams[0].Fallback = Target{Kind: TargetTeam, Team: "support"}
				absent(d, 1, 2, 3)
			},
			lead: Lead{ID: 8},
			en: "Assigned to Gleb Orlov: first available, number 1 in priority order in team " +
				"“Support”; no rule matched, the default applied; nobody available in team " +
				"“Sales”, passed on to team “Support”; skipped: Anna Smirnova — absent until " +
				"12 December, Boris Ivanov — absent until 12 December, Vera Petrova — absent " +
				"until 12 December.",
			ru: "Ответственный: Gleb Orlov — первый доступный, № 1 по приоритету в команде " +
				"«Support»; ни одно правило не подошло, действует вариант по умолчанию; в " +
				"команде «Sales» нет доступных, передано дальше в команду «Support»; " +
				"пропущены: Anna Smirnova — отсутствует до 12 декабря, Boris Ivanov — " +
				"отсутствует до 12 декабря, Vera Petrova — отсутствует до 12 декабря.",
		},
		{
			name:  "held",
			setup: func(s *Settings, d Directory, l ledger) { absent(d, 1, 2, 3) },
			lead:  Lead{ID: 9},
			en: "Held until somebody is available; no rule matched, the default applied; " +
				"skipped: Anna Smirnova — absent until 12 December, Boris Ivanov — absent until " +
				"12 December, Vera Petrova — absent until 12 December.",
			ru: "Лид ждёт, пока кто-нибудь освободится; ни одно правило не подошло, действует " +
				"вариант по умолчанию; пропущены: Anna Smirnova — отсутствует до 12 декабря, " +
				"Boris Ivanov — отсутствует до 12 декабря, Vera Petrova — отсутствует до " +
				"12 декабря.",
		},
		{
			name: "existing client",
			setup: func(s *Settings, d Directory, l ledger) {
				s.ExistingClient.Enabled = true
			},
			lead: Lead{ID: 10, ExistingOwner: 3},
			en: "Assigned to Vera Petrova: owner of the existing client; no rule matched, " +
				"the default applied.",
			ru: "Ответственный: Vera Petrova — ответственный за существующего клиента; ни одно " +
				"правило не подошло, действует вариант по умолчанию.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := twoTeams()
			d := people("Anna Smirnova", "Boris Ivanov", "Vera Petrova", "Gleb Orlov")
			l := ledger{}
			tt.setup(s, d, l)
			dec := simulateOne(s, l, &tt.lead, d, monday10, compilePatterns(s), nil)
			if got := dec.Trace.Text("en"); got != tt.en {
				t.Errorf("Text(en) =\n%s\nwant\n%s", got, tt.en)
			}
			if got := dec.Trace.Text("ru"); got != tt.ru {
				t.Errorf("Text(ru) =\n%s\nwant\n%s", got, tt.ru)
			}
			if got := dec.Trace.Text("de"); got != tt.en {
				t.Errorf("Text(de) = %q, want the English text", got)
			}
		})
	}
}

// TestTraceSaysHow checks the words for each way of choosing, in both languages.
func TestTraceSaysHow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		strategy string
		ledger   ledger
		en, ru   string
	}{
		{Weighted, ledger{}, "by weighted share", "по весам"},
		{Random, ledger{}, "drawn at random", "случайный выбор"},
		{LeastLoaded, ledger{"u1": "0:0:0:0:4"}, "fewest open leads (4)",
			"меньше всего открытых лидов (4)"},
		{LongestWaiting, ledger{}, "waiting longest (no leads yet)",
			"дольше всех без лидов (лидов ещё не было)"},
		{LongestWaiting, ledger{"u1": "0:" + strconv.FormatInt(monday10.Add(-30*time.Minute).
			UnixMilli(), 10) + ":0:0:0"}, "waiting longest (last lead 7 December 12:30)",
			"дольше всех без лидов (последний — 7 декабря 12:30)"},
		{FirstAvailable, ledger{}, "first available, number 1 in priority order",
			"первый доступный, № 1 по приоритету"},
	}
	for _, tt := range tests {
		t.Run(tt.en, func(t *testing.T) {
			s := oneTeam(tt.strategy, 1)
			dir := people("Anna")
			p := dir.People[1]
			p.TimeZone = "Europe/Moscow" // times are written in the person's zone
			dir.People[1] = p
			d := simulateOne(s, tt.ledger, &Lead{ID: 1}, dir, monday10, nil, sequence(0.5))
			en := "Assigned to Anna: " + tt.en + " in team “Sales”; no rule matched, " +
				"the default applied."
			if got := d.Trace.Text("en"); got != en {
				t.Errorf("Text(en) = %q, want %q", got, en)
			}
			ru := "Ответственный: Anna — " + tt.ru + " в команде «Sales»; ни одно правило " +
				"не подошло, действует вариант по умолчанию."
			if got := d.Trace.Text("ru-RU"); got != ru {
				t.Errorf("Text(ru) = %q, want %q", got, ru)
			}
		})
	}
}
