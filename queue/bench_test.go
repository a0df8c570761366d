package queue_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

// The pipeline's benchmarks measure what PERFORMANCE.md promises. Each iteration is
// one full scenario; run them with -benchtime=1x. They print their figures with
// ReportMetric and assert nothing about time.

// Bucket of a standard portal: what the fake portal enforces in these benchmarks.
const (
	bucketRate  = 2.0
	bucketBurst = 50
)

// BenchmarkBurst creates 1,000 leads at once on one portal of ten reps, with the
// fake portal enforcing the real leaky bucket, and reports REST calls per routed
// lead, the wall time against the bucket's minimum time for the calls made, the
// ratio of calls against a naive per-lead script routing the same burst on a twin
// portal, and Redis commands per routed lead: those the app sent (a script call
// counts one; MULTI/EXEC count too), and those the server ran (INFO commandstats,
// which also counts the commands inside scripts).
func BenchmarkBurst(b *testing.B) {
	const leads, reps = 1000, 10
	for b.Loop() {
		e := newEnv(b, bitrixtest.Options{Rate: bucketRate, Burst: bucketBurst, DeliveryWorkers: 8})
		p := e.install(b, "burst", reps)
		e.startQueue(b, queue.Config{Consumer: "bench", SweepEvery: time.Hour})
		time.Sleep(time.Second) // the sweep at start
		drainBucket(e, p)
		sent := &commandCounter{}
		e.rdb.AddHook(sent)
		before := commandStats(b, e.rdb)
		start := time.Now()
		for i := range leads {
			p.AddLead(1, map[string]any{"TITLE": fmt.Sprintf("Burst %d", i), "SOURCE_ID": "WEB"})
		}
		waitFor(b, 10*time.Minute, "burst routed", func() bool { return unassigned(p) == 0 })
		wall := time.Since(start)
		calls := restCalls(e.fake, p.MemberID(), start)
		logCallMix(b, e.fake, p.MemberID(), start)
		cmds := commandStats(b, e.rdb)
		minimum := bucketMinimum(calls)

		naive := e.fake.NewPortal(bitrixtest.PortalOptions{Name: "naive", Users: p.Users(),
			Rate: 1e6, Burst: 1e6})
		naiveCalls := naiveRoute(b, e, naive, leads, reps)

		b.ReportMetric(float64(calls)/leads, "calls/lead")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(minimum.Seconds(), "bucket-min-s")
		b.ReportMetric(wall.Seconds()/max(minimum.Seconds(), 1), "wall/bucket-min")
		b.ReportMetric(float64(naiveCalls)/float64(calls), "naive-calls/app-calls")
		b.ReportMetric(float64(sent.n.Load())/leads, "redis-cmds-sent/lead")
		b.ReportMetric(float64(cmds.total-before.total)/leads, "redis-cmds-run/lead")
		perLead := map[string]float64{}
		for k, n := range cmds.by {
			if d := n - before.by[k]; d > 0 {
				perLead[k] = float64(d) / leads
			}
		}
		b.Logf("Redis commands per lead: %v", perLead)
		b.ReportMetric(float64(cmds.scripts-before.scripts)/leads, "redis-scripts/lead")
	}
}

// drainBucket waits until the requests the install made have drained from the
// portal's bucket, so that the burst starts on an empty one.
func drainBucket(e *env, p *bitrixtest.Portal) {
	n := restCalls(e.fake, p.MemberID(), time.Time{})
	time.Sleep(time.Duration(float64(n) / bucketRate * float64(time.Second)))
}

// bucketMinimum is the least time the portal's bucket lets calls requests take.
func bucketMinimum(calls int) time.Duration {
	over := max(calls-bucketBurst, 0)
	return time.Duration(float64(over) / bucketRate * float64(time.Second))
}

// restCalls counts the REST requests the portal served since start.
func restCalls(fake *bitrixtest.Server, memberID string, since time.Time) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.MemberID == memberID && r.Method != "oauth.token" && !r.At.Before(since) {
			n++
		}
	}
	return n
}

// naiveRoute routes leads the way the common hand-written script does: for each
// lead, read it, count every rep's open leads with a list call, and update the
// lead with the least loaded rep. It returns the REST calls it made.
func naiveRoute(b *testing.B, e *env, p *bitrixtest.Portal, leads, reps int) int {
	b.Helper()
	ctx := context.Background()
	tok := p.Tokens(1)
	client := bitrix.NewClient(p.MemberID(), staticAuth{bitrix.Credentials{
		Endpoint: p.ClientEndpoint(), AccessToken: tok.AccessToken}}, bitrix.Options{})
	var ids []int
	for i := range leads {
		ids = append(ids, p.AddLead(1, map[string]any{"TITLE": fmt.Sprintf("Naive %d", i)}))
	}
	start := time.Now()
	for _, id := range ids {
		if err := client.Call(ctx, "crm.lead.get", map[string]any{"id": id}, nil); err != nil {
			b.Fatalf("naive crm.lead.get: %v", err)
		}
		best, bestOpen := 0, -1
		for r := range reps {
			resp, err := client.CallRaw(ctx, "crm.lead.list", map[string]any{
				"filter": map[string]any{"ASSIGNED_BY_ID": r + 2, "STATUS_SEMANTIC_ID": "P"},
				"select": []string{"ID"}})
			if err != nil {
				b.Fatalf("naive crm.lead.list: %v", err)
			}
			if open := resp.Total; bestOpen < 0 || open < bestOpen {
				best, bestOpen = r+2, open
			}
		}
		err := client.Call(ctx, "crm.lead.update", map[string]any{"id": id,
			"fields": map[string]any{"ASSIGNED_BY_ID": best}}, nil)
		if err != nil {
			b.Fatalf("naive crm.lead.update: %v", err)
		}
	}
	return restCalls(e.fake, p.MemberID(), start)
}

// staticAuth is a fixed access token, as a hand-written script holds one.
type staticAuth struct{ creds bitrix.Credentials }

func (a staticAuth) Credentials(context.Context) (bitrix.Credentials, error) { return a.creds, nil }
func (a staticAuth) Refresh(context.Context, bitrix.Credentials) (bitrix.Credentials, error) {
	return a.creds, nil
}
func (a staticAuth) Moved(context.Context, string) error { return nil }

type cmdCounts struct {
	total, scripts int64
	by             map[string]int64
}

// commandStats sums INFO commandstats: every command, and script calls.
func commandStats(b testing.TB, rdb redis.UniversalClient) cmdCounts {
	b.Helper()
	var info strings.Builder
	err := redistest.ForEachNode(context.Background(), rdb,
		func(ctx context.Context, node *redis.Client) error {
			s, err := node.Info(ctx, "commandstats").Result()
			info.WriteString(s + "\n")
			return err
		})
	if err != nil {
		b.Fatalf("INFO commandstats: %v", err)
	}
	c := cmdCounts{by: map[string]int64{}}
	for _, line := range strings.Split(info.String(), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		c.total += n
		c.by[strings.TrimPrefix(name, "cmdstat_")] += n
		if name == "cmdstat_evalsha" || name == "cmdstat_eval" {
			c.scripts += n
		}
	}
	return c
}

// commandCounter counts the commands a client sends, pipelined ones each, a script
// call as one.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(
	next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// BenchmarkNoisyNeighbour gives portal A a backlog of 10,000 leads and then portal
// B one lead, and reports how long B's lead waited for its owner.
func BenchmarkNoisyNeighbour(b *testing.B) {
	const backlog = 10000
	for b.Loop() {
		e := newEnv(b, bitrixtest.Options{Rate: bucketRate, Burst: bucketBurst, DeliveryWorkers: 16})
		a := e.install(b, "noisy", 5)
		quiet := e.install(b, "quiet", 2)
		e.startQueue(b, queue.Config{Consumer: "bench", SweepEvery: time.Hour})
		for i := range backlog {
			a.AddLead(1, map[string]any{"TITLE": fmt.Sprintf("Import %d", i)})
		}
		waitFor(b, 5*time.Minute, "A's backlog queued", func() bool {
			n, _ := e.rdb.XLen(context.Background(), keyspace.EventStream(a.MemberID())).Result()
			return n >= backlog/2
		})
		start := time.Now()
		quiet.AddLead(1, map[string]any{"TITLE": "The one lead"})
		waitFor(b, time.Minute, "B's lead routed", func() bool { return unassigned(quiet) == 0 })
		b.ReportMetric(time.Since(start).Seconds(), "B-latency-s")
		b.ReportMetric(float64(backlog-unassigned(a)), "A-routed-meanwhile")
	}
}

// logCallMix logs the REST requests by method and the batches' sizes.
func logCallMix(b *testing.B, fake *bitrixtest.Server, memberID string, since time.Time) {
	mix := map[string]int{}
	for _, r := range fake.Requests() {
		if r.MemberID != memberID || r.At.Before(since) {
			continue
		}
		key := r.Method
		if len(r.Batch) > 0 {
			key += fmt.Sprintf("[%s×%d]", r.Batch[0], len(r.Batch))
		}
		if r.Error != "" {
			key += " " + r.Error
		}
		mix[key]++
	}
	b.Logf("REST calls: %v", mix)
}
