package queue_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
)

// Load of the intake benchmark: as many connections as redis-benchmark's clients.
const (
	intakeClients  = 32
	intakeRounds   = 3
	intakeDuration = 3 * time.Second
	steadyRate     = 1000
	steadyEvents   = 3000
)

// BenchmarkIntake drives /events, behind the same middleware as the app, from
// processes of their own and reports the medians of three rounds, each of which
// measures side by side on the same redis-server:
//
//   - events/s: wrk with 32 keep-alive connections posting one ONCRMLEADADD for
//     three seconds; every answer must be 200 and the portal's stream must have
//     grown by at least the answers counted;
//   - raw-xadd/s: redis-benchmark with 32 clients sending XADD to a stream;
//   - intake/raw: the ratio of the two within the round;
//   - p99-ms@1000/s: the 99th percentile latency of a POST when a Go load
//     generator (this test binary running TestIntakeLoad) posts 1,000 events a
//     second, each on its own schedule, for three seconds.
//
// wrk and redis-benchmark are C programs of similar cost per request, so the ratio
// compares the app with Redis rather than two load generators. Absolute figures on
// a shared machine are noise; the ratio and the medians are what to read.
func BenchmarkIntake(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (apt-get install -y wrk)")
	}
	for b.Loop() {
		e := newEnv(b, bitrixtest.Options{})
		p := e.install(b, "intake", 1)
		rec, err := e.store.Portal(context.Background(), p.MemberID())
		if err != nil {
			b.Fatal(err)
		}
		body := url.Values{"event": {"ONCRMLEADADD"}, "data[FIELDS][ID]": {"7"},
			"auth[member_id]": {p.MemberID()}, "auth[application_token]": {rec.ApplicationToken},
			"auth[domain]": {p.Domain()}, "ts": {"1742807175"}}.Encode()
		target := e.app.URL + "/events"
		stream := keyspace.EventStream(p.MemberID())
		var rates, raws, ratios, p99s []float64
		for range intakeRounds {
			raw := rawXAdd(b, e.rdb)
			rate := wrkIntake(b, wrk, target, body, e.rdb, stream)
			p99s = append(p99s, steadyP99(b, target, body))
			raws, rates, ratios = append(raws, raw), append(rates, rate), append(ratios, rate/raw)
		}
		b.Logf("rounds: events/s %.0f, raw XADD/s %.0f, p99 ms %.2f", rates, raws, p99s)
		b.ReportMetric(median(rates), "events/s")
		b.ReportMetric(median(raws), "raw-xadd/s")
		b.ReportMetric(median(ratios), "intake/raw")
		b.ReportMetric(median(p99s), "p99-ms@1000/s")
	}
}

// wrkIntake posts body to target with wrk for intakeDuration and returns the
// events/s. Any answer but 200, or fewer stream entries than answers, fails.
func wrkIntake(b *testing.B, wrk, target, body string, rdb redis.UniversalClient,
	stream string) float64 {
	b.Helper()
	script := filepath.Join(b.TempDir(), "post.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\n"+
		"wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n", body)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	before := rdb.XLen(ctx, stream).Val()
	out, err := exec.Command(wrk, "-t1", "-c"+strconv.Itoa(intakeClients),
		"-d"+intakeDuration.String(), "-s", script, target).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Contains(text, "Non-2xx") || strings.Contains(text, "Socket errors") {
		b.Fatalf("wrk saw failed posts:\n%s", text)
	}
	done := wrkNumber(b, text, `(\d+) requests in`)
	if grown := float64(rdb.XLen(ctx, stream).Val() - before); grown < done {
		b.Fatalf("wrk counted %.0f answers, but the stream grew by %.0f", done, grown)
	}
	return wrkNumber(b, text, `Requests/sec:\s+([0-9.]+)`)
}

// wrkNumber returns the number that pattern's group captures in wrk's output.
func wrkNumber(b *testing.B, out, pattern string) float64 {
	b.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("wrk printed no %q:\n%s", pattern, out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		b.Fatalf("wrk printed %q: %v", m[1], err)
	}
	return v
}

// steadyP99 runs TestIntakeLoad in a child process against target and returns the
// p99 latency in milliseconds of steadyEvents posts at steadyRate a second.
func steadyP99(b *testing.B, target, body string) float64 {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntakeLoad$", "-test.v")
	cmd.Env = append(os.Environ(), "LEADROUTER_LOAD_URL="+target, "LEADROUTER_LOAD_BODY="+body,
		"LEADROUTER_LOAD_N="+strconv.Itoa(steadyEvents),
		"LEADROUTER_LOAD_RATE="+strconv.Itoa(steadyRate))
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("load generator: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "LOAD "); ok {
			var rps, p99 float64
			if _, err := fmt.Sscan(rest, &rps, &p99); err == nil {
				return p99
			}
		}
	}
	b.Fatalf("load generator printed no result:\n%s", out)
	return 0
}

// rawXAdd measures XADD throughput of the Redis behind rdb with redis-benchmark,
// with as many clients as wrk has connections.
func rawXAdd(b *testing.B, rdb redis.UniversalClient) float64 {
	b.Helper()
	var addr string
	var args []string
	switch c := rdb.(type) {
	case *redis.Client:
		addr = c.Options().Addr
	case *redis.ClusterClient:
		addr, args = c.Options().Addrs[0], []string{"--cluster"}
	}
	host, port, _ := strings.Cut(addr, ":")
	args = append(args, "-h", host, "-p", port, "-c", strconv.Itoa(intakeClients),
		"-n", "100000", "--csv", "XADD", "bench:raw", "*", "event", "ONCRMLEADADD", "lead", "7")
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		b.Skipf("redis-benchmark: %v %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Split(line, ",")
		if len(fields) >= 2 && strings.HasPrefix(fields[0], `"XADD`) {
			rps, err := strconv.ParseFloat(strings.Trim(fields[1], `"`), 64)
			if err == nil {
				return rps
			}
		}
	}
	b.Fatalf("redis-benchmark printed no rate:\n%s", out)
	return 0
}

// TestIntakeLoad is the steady load generator BenchmarkIntake starts in a second
// process; run directly it is skipped. It posts LEADROUTER_LOAD_N events at
// LEADROUTER_LOAD_RATE a second, each from its own goroutine at its own time so
// that a slow answer delays no later post, over keep-alive connections, and
// prints "LOAD <events/s> <p99 ms>".
func TestIntakeLoad(t *testing.T) {
	target := os.Getenv("LEADROUTER_LOAD_URL")
	if target == "" {
		t.Skip("the load generator of BenchmarkIntake")
	}
	body := os.Getenv("LEADROUTER_LOAD_BODY")
	n, _ := strconv.Atoi(os.Getenv("LEADROUTER_LOAD_N"))
	rate, _ := strconv.ParseFloat(os.Getenv("LEADROUTER_LOAD_RATE"), 64)
	if n <= 0 || rate <= 0 {
		t.Fatal("LEADROUTER_LOAD_N and LEADROUTER_LOAD_RATE must be positive")
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	post := func(i int) {
		t0 := time.Now()
		resp, err := hc.Post(target, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			failed.Add(1)
		}
		if resp != nil {
			resp.Body.Close()
		}
		lat[i] = time.Since(t0)
	}
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		wg.Go(func() { post(i) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d posts failed", f, n)
	}
	slices.Sort(lat)
	fmt.Printf("LOAD %.0f %.3f\n", float64(n)/elapsed.Seconds(),
		float64(lat[n*99/100].Microseconds())/1000)
	t.Logf("latency p50 %v p90 %v p99 %v max %v", lat[n/2], lat[n*9/10], lat[n*99/100], lat[n-1])
}

// median returns the middle of vs (the mean of the two middle ones for an even count).
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
