package routing

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSettingsVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _ := miniEngine(t)
	s, v, err := e.Settings(ctx, portal)
	if err != nil || v != 0 || len(s.Teams) != 0 {
		t.Fatalf("Settings() of a new portal = %+v, %d, %v; want empty, 0, nil", s, v, err)
	}
	first := oneTeam(RoundRobin, 1, 2)
	if v, err := e.SaveSettings(ctx, portal, first, 10); err != nil || v != 1 {
		t.Fatalf("SaveSettings() = %d, %v; want 1, nil", v, err)
	}
	second := oneTeam(Weighted, 1, 2, 3)
	second.Teams[0].Members[1].Weight = 3
	if v, err := e.SaveSettings(ctx, portal, second, 11); err != nil || v != 2 {
		t.Fatalf("SaveSettings() = %d, %v; want 2, nil", v, err)
	}
	cur, v, err := e.Settings(ctx, portal)
	if err != nil || v != 2 {
		t.Fatalf("Settings() version = %d, %v; want 2", v, err)
	}
	if diff := cmp.Diff(second, cur); diff != "" {
		t.Errorf("Settings() differs from what was saved (-saved +read):\n%s", diff)
	}
	changes, err := e.Diff(ctx, portal, 1, 2)
	if err != nil {
		t.Fatalf("Diff() error = %v", err)
	}
	var lines []string
	for _, c := range changes {
		lines = append(lines, c.String())
	}
	want := []string{
		`teams[0].members[1].weight: added 3`,
		`teams[0].members[2]: added {"user_id":3}`,
		`teams[0].strategy: "round_robin" → "weighted"`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("Diff() (-want +got):\n%s", diff)
	}
	if v, err := e.Rollback(ctx, portal, 1, 12); err != nil || v != 3 {
		t.Fatalf("Rollback() = %d, %v; want 3, nil", v, err)
	}
	cur, _, _ = e.Settings(ctx, portal)
	if diff := cmp.Diff(first, cur); diff != "" {
		t.Errorf("after Rollback() settings differ from version 1:\n%s", diff)
	}
	versions, err := e.Versions(ctx, portal)
	if err != nil {
		t.Fatalf("Versions() error = %v", err)
	}
	var got []VersionInfo
	for _, vi := range versions {
		if vi.SavedAt.IsZero() {
			t.Errorf("version %d has no time", vi.Version)
		}
		vi.SavedAt = vi.SavedAt.Truncate(0)
		got = append(got, VersionInfo{Version: vi.Version, Author: vi.Author,
			RollbackOf: vi.RollbackOf})
	}
	wantVersions := []VersionInfo{{3, 12, got[0].SavedAt, 1}, {2, 11, got[1].SavedAt, 0},
		{1, 10, got[2].SavedAt, 0}}
	if diff := cmp.Diff(wantVersions, got); diff != "" {
		t.Errorf("Versions() (-want +got):\n%s", diff)
	}
	if _, err := e.Version(ctx, portal, 9); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Version(9) error = %v, want ErrNoVersion", err)
	}
	if _, err := e.Rollback(ctx, portal, 9, 12); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Rollback(9) error = %v, want ErrNoVersion", err)
	}
}

func TestSaveRejectsInvalidSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _ := miniEngine(t)
	bad := oneTeam(RoundRobin, 1, 2, 2)
	bad.Teams[0].Members[0].Weight = 500
	if _, err := e.SaveSettings(ctx, portal, bad, 1); err == nil {
		t.Fatal("SaveSettings() accepted invalid settings")
	}
	if _, v, _ := e.Settings(ctx, portal); v != 0 {
		t.Errorf("invalid settings were stored as version %d", v)
	}
}

func TestValidationMessages(t *testing.T) {
	t.Parallel()
	valid := func() *Settings {
		s := oneTeam(RoundRobin, 1, 2, 3)
		s.Rules = []Rule{{ID: "r", Name: "Rule", Target: s.Default,
			Conditions: []Condition{{Field: "SOURCE_ID", Op: OpEquals, Value: "WEB"}}}}
		return s
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate() of valid settings = %v", err)
	}
	tests := []struct {
		name   string
		change func(s *Settings)
		path   string
		says   string
	}{
		{"weight too big", func(s *Settings) { s.Teams[0].Members[2].Weight = 101 },
			"teams[0].members[2].weight", "The weight must be a whole number from 1 to 100."},
		{"same person twice", func(s *Settings) { s.Teams[0].Members[1].UserID = 1 },
			"teams[0].members[1].user_id", "This person is already in the team."},
		{"no person", func(s *Settings) { s.Teams[0].Members[0].UserID = 0 },
			"teams[0].members[0].user_id", "Choose a person."},
		{"negative cap", func(s *Settings) { s.Teams[0].Members[0].DailyCap = -1 },
			"teams[0].members[0].daily_cap", "The daily limit cannot be negative"},
		{"negative open cap", func(s *Settings) { s.Teams[0].Members[0].OpenCap = -2 },
			"teams[0].members[0].open_cap", "The limit of open leads cannot be negative"},
		{"empty team", func(s *Settings) { s.Teams[0].Members = nil },
			"teams[0].members", "Add at least one person to the team."},
		{"unknown strategy", func(s *Settings) { s.Teams[0].Strategy = "fastest" },
			"teams[0].strategy", "Choose how the team shares leads"},
		{"team without name", func(s *Settings) { s.Teams[0].Name = " " },
			"teams[0].name", "Give the team a name."},
		{"duplicate team", func(s *Settings) { s.Teams = append(s.Teams, s.Teams[0]) },
			"teams[1].id", `Another team already uses the identifier "sales".`},
		{"bad time zone", func(s *Settings) {
			s.Teams[0].Schedule = &Schedule{Days: []int{1}, From: "09:00", To: "18:00",
				TimeZone: "Mars/Olympus"}
		}, "teams[0].schedule.time_zone", `Unknown time zone "Mars/Olympus"`},
		{"bad hour", func(s *Settings) {
			s.Teams[0].Members[1].Schedule = &Schedule{Days: []int{1}, From: "9", To: "18:00"}
		}, "teams[0].members[1].schedule.from", "Write the start of the working day as HH:MM"},
		{"bad day", func(s *Settings) {
			s.Teams[0].Schedule = &Schedule{Days: []int{1, 8}, From: "09:00", To: "18:00"}
		}, "teams[0].schedule.days[1]", "Days go from 1 (Monday) to 7 (Sunday)."},
		{"self fallback", func(s *Settings) {
			s.Teams[0].Fallback = Target{Kind: TargetTeam, Team: "sales"}
		}, "teams[0].fallback.team", "A team cannot fall back to itself."},
		{"missing team", func(s *Settings) { s.Default.Team = "nobody" },
			"default.team", "Choose one of the teams."},
		{"unknown field", func(s *Settings) { s.Rules[0].Conditions[0].Field = "PASSWORD" },
			"rules[0].conditions[0].field", "Choose a lead field"},
		{"custom field", func(s *Settings) { s.Rules[0].Conditions[0].Field = "UF_CRM_" },
			"rules[0].conditions[0].field", "Choose a lead field"},
		{"not a number", func(s *Settings) {
			s.Rules[0].Conditions[0] = Condition{Field: "OPPORTUNITY", Op: OpGreater, Value: "lots"}
		}, "rules[0].conditions[0].value", "Enter a number"},
		{"between reversed", func(s *Settings) {
			s.Rules[0].Conditions[0] = Condition{Field: "OPPORTUNITY", Op: OpBetween,
				Values: []string{"10", "1"}}
		}, "rules[0].conditions[0].values", "The lower bound must not be greater"},
		{"bad regex", func(s *Settings) {
			s.Rules[0].Conditions[0] = Condition{Field: "TITLE", Op: OpMatches, Value: "(a"}
		}, "rules[0].conditions[0].value", "This is not a valid regular expression."},
		{"long regex", func(s *Settings) {
			long := make([]byte, MaxPatternLength+1)
			for i := range long {
				long[i] = 'a'
			}
			s.Rules[0].Conditions[0] = Condition{Field: "TITLE", Op: OpMatches, Value: string(long)}
		}, "rules[0].conditions[0].value", "The expression is too long: at most 200 characters."},
		{"empty in", func(s *Settings) {
			s.Rules[0].Conditions[0] = Condition{Field: "SOURCE_ID", Op: OpIn}
		}, "rules[0].conditions[0].values", "Enter at least one value."},
		{"unknown operator", func(s *Settings) { s.Rules[0].Conditions[0].Op = "like" },
			"rules[0].conditions[0].op", "Choose how to compare the field."},
		{"currency on title", func(s *Settings) { s.Rules[0].Conditions[0].Currency = "RUB" },
			"rules[0].conditions[0].currency", "A currency only applies to the amount"},
		{"rule without target", func(s *Settings) { s.Rules[0].Target = Target{} },
			"rules[0].target.kind", "Choose where the rule sends the lead."},
		{"scope without sources", func(s *Settings) { s.Scope.Mode = ScopeSources },
			"scope.sources", "Choose at least one source"},
		{"scope without users", func(s *Settings) { s.Scope.Mode = ScopeAssignedTo },
			"scope.users", "Choose the user that new leads arrive assigned to."},
		{"blank reroute status", func(s *Settings) { s.Reroute.Statuses = []string{"NEW", " "} },
			"reroute.statuses[1]", "Choose the status that routes a lead again."},
		{"reroute status twice", func(s *Settings) {
			s.Reroute.Statuses = []string{"NEW", "NEW"}
		}, "reroute.statuses[1]", `The status "NEW" is listed twice.`},
		{"deadline of no minutes", func(s *Settings) { s.Teams[0].Deadline = &Deadline{} },
			"teams[0].deadline.minutes", "The time to take a lead up must be a whole number"},
		{"deadline over a day", func(s *Settings) {
			s.Teams[0].Deadline = &Deadline{Minutes: 1441}
		}, "teams[0].deadline.minutes", "The time to take a lead up must be a whole number"},
		{"negative passes", func(s *Settings) {
			s.Teams[0].Deadline = &Deadline{Minutes: 30, MaxPasses: -1}
		}, "teams[0].deadline.max_passes", "The number of passes must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(s)
			var verr *ValidationError
			if err := s.Validate(); !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			msg, ok := verr.Fields[tt.path]
			if !ok {
				t.Fatalf("Validate() fields = %v, want one at %s", verr.Fields, tt.path)
			}
			if len(msg) < len(tt.says) || msg[:len(tt.says)] != tt.says {
				t.Errorf("message at %s = %q, want it to start with %q", tt.path, msg, tt.says)
			}
		})
	}
}

func TestNeeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    *Settings
		want Needs
	}{
		{"nothing configured", &Settings{}, Needs{}},
		{"plain team", oneTeam(RoundRobin, 2, 1), Needs{People: []int64{1, 2}, Absence: true}},
		{"clock-in and caps", func() *Settings {
			s := oneTeam(RoundRobin, 1)
			s.Teams[0].RequireClockIn = true
			s.Teams[0].Members[0].DailyCap = 3
			s.ExistingClient.Enabled = true
			s.Rules = []Rule{{Target: Target{Kind: TargetPerson, User: 9}}}
			return s
		}(), Needs{People: []int64{1, 9}, Absence: true, Timeman: true, TimeZones: true,
			ExistingOwner: true}},
		{"schedule with its own zone", func() *Settings {
			s := oneTeam(RoundRobin, 1)
			s.Teams[0].Schedule = &Schedule{Days: []int{1}, From: "09:00", To: "18:00",
				TimeZone: "Europe/Moscow"}
			return s
		}(), Needs{People: []int64{1}, Absence: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.s.Needs()); diff != "" {
				t.Errorf("Needs() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSaveOver saves from one base version in many editors at once: exactly one
// save lands, the others get ErrConflict and change nothing, on both backends.
func TestSaveOver(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := NewEngine(rdb, quietLog())
			if _, err := e.SaveSettings(ctx, portal, oneTeam(RoundRobin, 1), 1); err != nil {
				t.Fatalf("SaveSettings() error = %v", err)
			}
			const editors = 8
			errs := make(chan error, editors)
			for i := range editors {
				go func() {
					_, err := e.SaveOver(ctx, portal, oneTeam(RoundRobin, 1, int64(i+2)), 1, 1)
					errs <- err
				}()
			}
			saved := 0
			for range editors {
				switch err := <-errs; {
				case err == nil:
					saved++
				case !errors.Is(err, ErrConflict):
					t.Errorf("SaveOver() error = %v, want nil or ErrConflict", err)
				}
			}
			if _, v, _ := e.Settings(ctx, portal); saved != 1 || v != 2 {
				t.Errorf("%d saves landed and the version is %d, want 1 and 2", saved, v)
			}
			if _, err := e.SaveOver(ctx, portal, oneTeam(RoundRobin, 1), 1, 0); !errors.Is(err,
				ErrConflict) {
				t.Errorf("SaveOver(base 0) over saved settings = %v, want ErrConflict", err)
			}
		})
	}
}

// TestVersionsKept saves more versions than are kept: the oldest go, the rest stay
// readable, and a rollback to one that went is refused.
func TestVersionsKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, _ := miniEngine(t)
	for i := range KeptVersions + 3 {
		if _, err := e.SaveSettings(ctx, portal, oneTeam(RoundRobin, 1, int64(i+2)), 1); err != nil {
			t.Fatalf("SaveSettings() error = %v", err)
		}
	}
	versions, err := e.Versions(ctx, portal)
	if err != nil || len(versions) != KeptVersions {
		t.Fatalf("Versions() = %d versions, %v; want %d", len(versions), err, KeptVersions)
	}
	if newest, oldest := versions[0].Version, versions[len(versions)-1].Version; newest !=
		KeptVersions+3 || oldest != 4 {
		t.Errorf("versions run %d..%d, want 4..%d", oldest, newest, KeptVersions+3)
	}
	if _, err := e.Rollback(ctx, portal, 3, 1); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Rollback(dropped version) error = %v, want ErrNoVersion", err)
	}
	if _, err := e.Rollback(ctx, portal, 4, 1); err != nil {
		t.Errorf("Rollback(oldest kept version) error = %v", err)
	}
}
