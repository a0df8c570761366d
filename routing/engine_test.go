package routing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// TestDecidingAgainSpendsNoTurn decides a lead twice and checks the second answer is
// the first one and the rotation did not move.
func TestDecidingAgainSpendsNoTurn(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			e := NewEngine(rdb, quietLog())
			save(t, e, oneTeam(RoundRobin, 1, 2, 3))
			dir := people("Anna", "Boris", "Vera")
			first := decide(t, e, 100, dir, monday10)
			again := decide(t, e, 100, dir, monday10.Add(time.Hour))
			if again.UserID != first.UserID || !again.Repeated || first.Repeated {
				t.Fatalf("Decide() again = user %d repeated %v, want user %d repeated",
					again.UserID, again.Repeated, first.UserID)
			}
			if again.Trace.Text("en") != first.Trace.Text("en") {
				t.Errorf("trace changed: %q, then %q", first.Trace.Text("en"), again.Trace.Text("en"))
			}
			if next := decide(t, e, 101, dir, monday10); next.UserID != 2 {
				t.Errorf("next lead went to %d, want Boris (2): the repeat spent a turn", next.UserID)
			}
			// The settings now leave such leads alone, but this one was decided.
			scoped := oneTeam(RoundRobin, 1, 2, 3)
			scoped.Scope = Scope{Mode: ScopeSources, Sources: []string{"WEB"}}
			save(t, e, scoped)
			if d := decide(t, e, 100, dir, monday10); d.UserID != first.UserID || !d.Repeated {
				t.Errorf("Decide() after a scope change = %s user %d repeated %v, want the first",
					d.Outcome, d.UserID, d.Repeated)
			}
			if d := decide(t, e, 102, dir, monday10); d.Outcome != NotRouted {
				t.Errorf("Decide() of a new lead = %s, want not routed", d.Outcome)
			}
		})
	}
}

// TestDecideSeesSettingsSavedElsewhere saves new settings through one engine while
// another has the old ones cached; the script notices and the second engine uses
// the new version.
func TestDecideSeesSettingsSavedElsewhere(t *testing.T) {
	t.Parallel()
	rdb := realRedis(t)
	a, b := NewEngine(rdb, quietLog()), NewEngine(rdb, quietLog())
	save(t, a, oneTeam(RoundRobin, 1))
	dir := people("Anna", "Boris")
	if d := decide(t, a, 1, dir, monday10); d.UserID != 1 || d.SettingsVersion != 1 {
		t.Fatalf("Decide() = user %d v%d, want Anna under v1", d.UserID, d.SettingsVersion)
	}
	save(t, b, oneTeam(RoundRobin, 2))
	if d := decide(t, a, 2, dir, monday10); d.UserID != 2 || d.SettingsVersion != 2 {
		t.Fatalf("Decide() = user %d v%d, want Boris under v2", d.UserID, d.SettingsVersion)
	}
	scoped := oneTeam(RoundRobin, 2)
	scoped.Scope = Scope{Mode: ScopeSources, Sources: []string{"WEB"}}
	save(t, b, scoped)
	d, err := a.Decide(context.Background(), portal, Lead{ID: 3}, dir, monday10)
	if err != nil || d.Outcome != NotRouted || d.SettingsVersion != 3 {
		t.Fatalf("Decide() = %s v%d %v, want not routed under v3", d.Outcome, d.SettingsVersion, err)
	}
	save(t, b, oneTeam(RoundRobin, 1))
	if d := decide(t, a, 4, dir, monday10); d.Outcome != Assigned || d.SettingsVersion != 4 {
		t.Fatalf("Decide() = %s v%d, want assigned under v4: a cached scope kept the lead out",
			d.Outcome, d.SettingsVersion)
	}
}

func openLeads(t *testing.T, rdb redis.UniversalClient, user int64) int64 {
	t.Helper()
	v, err := rdb.HGet(context.Background(), keyspace.RoutingLedger(portal),
		personField(user)).Result()
	if err != nil {
		t.Fatalf("HGet() error = %v", err)
	}
	return parseRecord(v).Open
}

func TestReleaseCountsDownOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	e := NewEngineOptions(rdb, quietLog(), Options{DecisionTTL: time.Hour})
	s := oneTeam(FirstAvailable, 1, 2)
	s.Teams[0].Members[0].OpenCap = 2
	save(t, e, s)
	dir := people("Anna", "Boris")
	for id := int64(1); id <= 3; id++ {
		decide(t, e, id, dir, monday10)
	}
	if n := openLeads(t, rdb, 1); n != 2 {
		t.Fatalf("Anna holds %d open leads, want 2", n)
	}
	steps := []struct {
		name       string
		user, lead int64
		want       int64
	}{
		{"release", 1, 1, 1},
		{"release the same lead again", 1, 1, 1},
		{"release a lead of somebody else", 1, 3, 1},
		{"release the second lead", 1, 2, 0},
	}
	for _, st := range steps {
		if err := e.Release(ctx, portal, st.user, st.lead); err != nil {
			t.Fatalf("%s: Release() error = %v", st.name, err)
		}
		if n := openLeads(t, rdb, 1); n != st.want {
			t.Fatalf("%s: Anna holds %d open leads, want %d", st.name, n, st.want)
		}
	}
	if d := decide(t, e, 4, dir, monday10); d.UserID != 1 {
		t.Fatalf("after releases the lead went to %d, want Anna", d.UserID)
	}
	mr.FastForward(2 * time.Hour) // the decision is forgotten
	for range 3 {
		if err := e.Release(ctx, portal, 1, 4); err != nil {
			t.Fatalf("Release() error = %v", err)
		}
	}
	if n := openLeads(t, rdb, 1); n != 0 {
		t.Fatalf("after forgotten releases Anna holds %d, want 0 (never below)", n)
	}
}

func TestExistingClientKeepsTheTurn(t *testing.T) {
	t.Parallel()
	e, _ := miniEngine(t)
	s := oneTeam(RoundRobin, 1, 2, 3)
	s.ExistingClient.Enabled = true
	save(t, e, s)
	dir := people("Anna", "Boris", "Vera", "Gleb")
	ctx := context.Background()
	tests := []struct {
		name  string
		lead  Lead
		want  int64
		how   string
		setup func()
	}{
		{"first turn", Lead{ID: 1}, 1, RoundRobin, nil},
		{"owner gets the client", Lead{ID: 2, ExistingOwner: 3}, 3, "existing_owner", nil},
		{"turn unchanged", Lead{ID: 3}, 2, RoundRobin, nil},
		{"owner outside teams", Lead{ID: 4, ExistingOwner: 4}, 4, "existing_owner", nil},
		{"absent owner", Lead{ID: 5, ExistingOwner: 1}, 3, RoundRobin, func() {
			p := dir.People[1]
			p.AbsentUntil = monday10.Add(time.Hour)
			dir.People[1] = p
		}},
		{"members only", Lead{ID: 6, ExistingOwner: 4}, 2, RoundRobin, func() {
			s.ExistingClient.MembersOnly = true
			save(t, e, s)
		}},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		d, err := e.Decide(ctx, portal, tt.lead, dir, monday10)
		if err != nil {
			t.Fatalf("%s: Decide() error = %v", tt.name, err)
		}
		if d.UserID != tt.want || d.Trace.Entries[0].Params["how"] != tt.how {
			t.Fatalf("%s: Decide() = user %d how %q, want user %d how %q: %s", tt.name,
				d.UserID, d.Trace.Entries[0].Params["how"], tt.want, tt.how, d.Trace.Text("en"))
		}
	}
}

func TestScopeKeepsLeadsAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scope  Scope
		lead   Lead
		routed bool
		text   string
	}{
		{"all", Scope{}, Lead{ID: 1}, true, ""},
		{"listed source", Scope{Mode: ScopeSources, Sources: []string{"WEB"}},
			Lead{ID: 1, Fields: map[string]string{"SOURCE_ID": "web"}}, true, ""},
		{"other source", Scope{Mode: ScopeSources, Sources: []string{"WEB"}},
			Lead{ID: 1, Fields: map[string]string{"SOURCE_ID": "CALL"}}, false,
			"Not routed: source “CALL” is not among the routed sources."},
		{"integration user", Scope{Mode: ScopeAssignedTo, Users: []int64{9}},
			Lead{ID: 1, AssignedByID: 9, CreatedByID: 9}, true, ""},
		{"assigned to a person", Scope{Mode: ScopeAssignedTo, Users: []int64{9}},
			Lead{ID: 1, AssignedByID: 2, CreatedByID: 9}, false,
			"Not routed: it arrived assigned to Boris, whose leads are not routed."},
		{"manual choice kept", Scope{KeepManual: true},
			Lead{ID: 1, AssignedByID: 2, CreatedByID: 1}, false,
			"Not routed: Boris was chosen as responsible by hand."},
		{"creator's own lead", Scope{KeepManual: true},
			Lead{ID: 1, AssignedByID: 1, CreatedByID: 1}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, rdb := miniEngine(t)
			s := oneTeam(RoundRobin, 1)
			s.Scope = tt.scope
			save(t, e, s)
			d, err := e.Decide(context.Background(), portal, tt.lead, people("Anna", "Boris"), monday10)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if routed := d.Outcome == Assigned; routed != tt.routed {
				t.Fatalf("Decide() = %s, want routed %v: %s", d.Outcome, tt.routed, d.Trace.Text("en"))
			}
			if !tt.routed {
				if got := d.Trace.Text("en"); got != tt.text {
					t.Errorf("Text() = %q, want %q", got, tt.text)
				}
				if n := rdb.Exists(context.Background(), keyspace.RoutingLedger(portal)).Val(); n != 0 {
					t.Errorf("a lead left alone wrote rotation state")
				}
			}
		})
	}
}

// TestIdlePortalsCostNothing reads settings and decides leads for many portals that
// never saved settings, on a real redis-server, and checks nothing was written.
func TestIdlePortalsCostNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := realRedis(t)
	e := NewEngine(rdb, quietLog())
	touch := func(prefix string) {
		for i := range 500 {
			member := fmt.Sprintf("%s%04d", prefix, i)
			if _, v, err := e.Settings(ctx, member); err != nil || v != 0 {
				t.Fatalf("Settings() = v%d, %v", v, err)
			}
			d, err := e.Decide(ctx, member, Lead{ID: 1}, people("Anna"), monday10)
			if err != nil || d.Outcome != NotRouted {
				t.Fatalf("Decide() = %s, %v; want not routed", d.Outcome, err)
			}
			if !strings.Contains(d.Trace.Text("ru"), "распределение ещё не настроено") {
				t.Errorf("Text(ru) = %q", d.Trace.Text("ru"))
			}
		}
	}
	touch("warmup") // the scripts load once per server and the buffers settle
	before := usedMemory(t, rdb)
	touch("idle")
	if n := rdb.DBSize(ctx).Val(); n != 0 {
		t.Errorf("idle portals wrote %d keys", n)
	}
	// Nothing is stored; what remains is the server's own buffers moving.
	if grew := usedMemory(t, rdb) - before; grew/500 > 4096 {
		t.Errorf("used_memory grew by %d bytes for 500 idle portals, over 4 KB each", grew)
	}
}

func usedMemory(t testing.TB, rdb *redis.Client) int64 {
	t.Helper()
	info := rdb.Info(context.Background(), "memory").Val()
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

// TestConfiguredPortalIsSmall checks the Redis memory of a portal with ordinary
// settings that has routed a few leads: the settings hash and the ledger.
func TestConfiguredPortalIsSmall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := realRedis(t)
	e := NewEngine(rdb, quietLog())
	s := oneTeam(Weighted, 1, 2, 3, 4, 5, 6, 7, 8)
	for i := range 5 {
		s.Rules = append(s.Rules, Rule{ID: fmt.Sprint("r", i), Name: fmt.Sprint("Rule ", i),
			Target: s.Default, Conditions: []Condition{
				{Field: "SOURCE_ID", Op: OpIn, Values: []string{"WEB", "CALL"}},
				{Field: "OPPORTUNITY", Op: OpGreater, Value: "1000", Currency: "RUB"}}})
	}
	save(t, e, s)
	dir := people("A", "B", "C", "D", "E", "F", "G", "H")
	for id := int64(1); id <= 16; id++ {
		decide(t, e, id, dir, monday10)
	}
	for _, key := range []string{keyspace.RoutingSettings(portal), keyspace.RoutingLedger(portal),
		keyspace.RoutingDecision(portal, 16)} {
		n, err := rdb.MemoryUsage(ctx, key).Result()
		if err != nil {
			t.Fatalf("MemoryUsage(%s) error = %v", key, err)
		}
		t.Logf("%s: %d bytes", key, n)
		if n > 4096 {
			t.Errorf("%s takes %d bytes, want at most 4 KB", key, n)
		}
	}
}

// TestLongFallbackChain decides through ten full teams chained by fallbacks, more
// ledger fields than one script call may unpack at once.
func TestLongFallbackChain(t *testing.T) {
	t.Parallel()
	for name, rdb := range backends(t) {
		t.Run(name, func(t *testing.T) {
			e := NewEngine(rdb, quietLog())
			s := &Settings{Default: Target{Kind: TargetTeam, Team: "t0"}}
			dir := Directory{People: map[int64]Person{}}
			for i := range 10 {
				tm := Team{ID: fmt.Sprint("t", i), Name: fmt.Sprint("Team ", i),
					Strategy: LeastLoaded}
				if i < 9 {
					tm.Fallback = Target{Kind: TargetTeam, Team: fmt.Sprint("t", i+1)}
				}
				for j := range maxMembers {
					id := int64(i*maxMembers + j + 1)
					tm.Members = append(tm.Members, Member{UserID: id})
					dir.People[id] = Person{ID: id, Name: fmt.Sprint(id), Active: i == 9}
				}
				s.Teams = append(s.Teams, tm)
			}
			save(t, e, s)
			d := decide(t, e, 1, dir, monday10)
			if d.Outcome != Assigned || d.TeamID != "t9" {
				t.Fatalf("Decide() = %s in %q, want assigned in the last team", d.Outcome, d.TeamID)
			}
		})
	}
}
