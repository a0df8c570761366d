package routing

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// benchSettings is a portal with rules in front of a weighted team of ten people with
// caps high enough never to be reached.
func benchSettings() (*Settings, Directory) {
	s := oneTeam(Weighted)
	var names []string
	for id := int64(1); id <= 10; id++ {
		s.Teams[0].Members = append(s.Teams[0].Members, Member{UserID: id, Weight: int(id),
			DailyCap: 1_000_000, OpenCap: 1_000_000})
		names = append(names, "Person "+strconv.FormatInt(id, 10))
	}
	s.Teams[0].RequireClockIn = true
	s.Teams[0].Schedule = &Schedule{Days: []int{1, 2, 3, 4, 5}, From: "08:00", To: "20:00",
		TimeZone: "Europe/Moscow"}
	s.Rules = []Rule{
		{ID: "big", Name: "Big", Target: s.Default, Conditions: []Condition{
			{Field: "OPPORTUNITY", Op: OpGreater, Value: "1000000", Currency: "RUB"}}},
		{ID: "site", Name: "Site", Target: s.Default, Conditions: []Condition{
			{Field: "TITLE", Op: OpMatches, Value: `^order #\d+`}}},
	}
	return s, people(names...)
}

// commandStat is one command's line of INFO commandstats.
type commandStat struct{ calls, usec int64 }

// commandCalls returns the server's command counts and times by name.
func commandCalls(b *testing.B, rdb *redis.Client) map[string]commandStat {
	b.Helper()
	out := map[string]commandStat{}
	info := rdb.Info(context.Background(), "commandstats").Val()
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || line == name {
			continue
		}
		var st commandStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.calls = n
			case "usec":
				st.usec = n
			}
		}
		out[name] = st
	}
	return out
}

// BenchmarkDecide measures decisions per second against a real redis-server and the
// Redis commands each costs (INFO commandstats deltas, scripts' inner calls included).
func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	rdb := realRedis(b)
	e := NewEngine(rdb, quietLog())
	s, dir := benchSettings()
	save(b, e, s)
	lead := Lead{Fields: map[string]string{"OPPORTUNITY": "500", "TITLE": "Call me"}}
	lead.ID = -1
	decide(b, e, lead.ID, dir, monday10) // load the script and the settings cache
	before := commandCalls(b, rdb)
	b.ResetTimer()
	for i := range b.N {
		lead.ID = int64(i + 1)
		if _, err := e.Decide(ctx, portal, lead, dir, monday10); err != nil {
			b.Fatalf("Decide() error = %v", err)
		}
	}
	b.StopTimer()
	after := commandCalls(b, rdb)
	var total, scripts, usec int64
	for name, st := range after {
		if name == "info" {
			continue
		}
		d := st.calls - before[name].calls
		total += d
		if name == "evalsha" || name == "eval" {
			scripts += d
			usec += st.usec - before[name].usec
		}
	}
	n := float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(total)/n, "commands/decision")
	b.ReportMetric(float64(scripts)/n, "scripts/decision")
	// The server's own time in the script, steadier than wall time on a busy machine.
	b.ReportMetric(float64(usec)/n, "server-µs/decision")
}

// BenchmarkDecideMiniredis measures decisions per second on miniredis, as the
// sandbox runs.
func BenchmarkDecideMiniredis(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	e := NewEngine(rdb, quietLog())
	s, dir := benchSettings()
	save(b, e, s)
	b.ResetTimer()
	for i := range b.N {
		decide(b, e, int64(i+1), dir, monday10)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkSimulate measures in-memory decisions per second of a simulation.
func BenchmarkSimulate(b *testing.B) {
	s, dir := benchSettings()
	leads := make([]Lead, 500)
	for i := range leads {
		leads[i] = Lead{ID: int64(i + 1), Fields: map[string]string{"TITLE": "order #12"}}
	}
	b.ResetTimer()
	for range b.N {
		simulate(s, ledger{}, leads, dir, monday10.Add(time.Hour))
	}
	b.ReportMetric(float64(b.N*len(leads))/b.Elapsed().Seconds(), "decisions/s")
}
