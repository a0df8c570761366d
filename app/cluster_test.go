package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

// TestTwoInstancesOnRedisCluster runs LeadRouter as an operator scales it out: two
// application instances behind one address, sharing a three-master Redis Cluster
// named in REDIS_URL form. The sample company installs the app through its install
// page and creates leads; every lead must end with exactly one owner chosen by one
// decision, written back once, whichever instance received its event and whichever
// worker took it.
func TestTwoInstancesOnRedisCluster(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cluster := redistest.StartCluster(t)
	fake := bitrixtest.Start(t, bitrixtest.Options{Rate: -1, Logger: log})

	// The front alternates requests between the instances, as a load balancer does.
	var instances []*application
	var turn atomic.Uint64
	front := httptest.NewUnstartedServer(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			instances[turn.Add(1)%uint64(len(instances))].Handler().ServeHTTP(w, r)
		}))
	t.Cleanup(front.Close)
	frontURL := "http://" + front.Listener.Addr().String()
	for _, name := range []string{"first", "second"} {
		app, err := newApplication(appConfig{
			PublicURL: frontURL, ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
			OAuthURL: fake.OAuthURL(),
			Queue:    queue.Config{Consumer: name, Poll: 10 * time.Millisecond, SweepEvery: time.Hour},
		}, clusterFromURL(t, cluster.URL()), log)
		if err != nil {
			t.Fatalf("newApplication(%s) = %v", name, err)
		}
		instances = append(instances, app)
	}
	front.Start()
	startInstances(t, instances)

	portal := fake.NewPortal(sampleCompany())
	if err := sandboxInstall(ctx, instances[0].store, portal, frontURL); err != nil {
		t.Fatalf("install through the front = %v", err)
	}
	_, err := instances[1].engine.SaveSettings(ctx, portal.MemberID(), sampleSettings(), 1)
	if err != nil {
		t.Fatalf("SaveSettings() = %v", err)
	}

	// Both instances' workers route the first half of the leads. Then the first
	// instance stops its workers, while its HTTP side keeps taking events, and the
	// second instance routes the rest.
	rng := rand.New(rand.NewPCG(3, 5))
	var ids []int
	for half := range 2 {
		if half == 1 {
			stopInstance(t, instances[0])
		}
		for range 20 {
			ids = append(ids, portal.AddLead(1, sampleLead(rng)))
		}
		waitAssigned(t, instances[half].queue, portal.MemberID(), ids)
	}
	history := waitAssigned(t, instances[0].queue, portal.MemberID(), ids)

	updates := ownerWrites(portal)
	for _, id := range ids {
		entries := history[id]
		lead, _ := portal.Lead(id)
		if len(entries) != 1 {
			t.Errorf("lead %d has %d log entries, want one decision: %+v", id, len(entries), entries)
			continue
		}
		if owner := lead["ASSIGNED_BY_ID"]; owner != strconv.FormatInt(entries[0].UserID, 10) {
			t.Errorf("lead %d belongs to %v, but the decision chose %d", id, owner, entries[0].UserID)
		}
		// A lead that stays with its creator (user 1) needs no write.
		if want := 1; updates[id] != want && (entries[0].UserID != 1 || updates[id] > want) {
			t.Errorf("lead %d was written %d times, want once", id, updates[id])
		}
	}
	assertConsumers(t, cluster.Client(t), portal.MemberID(), "second")
	assertTagged(t, cluster.Client(t), portal.MemberID())
}

// clusterFromURL connects to the cluster the way an operator's REDIS_URL does.
func clusterFromURL(t *testing.T, url string) redis.UniversalClient {
	t.Helper()
	opts, err := ParseRedisURL(url)
	if err != nil {
		t.Fatalf("ParseRedisURL(%q) = %v", url, err)
	}
	rdb := redis.NewUniversalClient(opts)
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("REDIS_URL %q gave a %T, want a cluster client", url, rdb)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// startInstances starts every instance's workers and stops them, in order, when
// the test ends.
func startInstances(t *testing.T, instances []*application) {
	t.Helper()
	for _, app := range instances {
		if err := app.Start(context.Background()); err != nil {
			t.Fatalf("Start() = %v", err)
		}
	}
	t.Cleanup(func() {
		for _, app := range instances {
			stopInstance(t, app)
		}
	})
}

// stopInstance stops an instance's background work as a clean shutdown does; a
// second stop does nothing.
func stopInstance(t *testing.T, app *application) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		t.Errorf("Stop() = %v", err)
	}
}

// waitAssigned waits until every lead has an assignment in the portal's log and
// returns the log entries by lead.
func waitAssigned(t *testing.T, q *queue.Queue, memberID string,
	ids []int) map[int][]queue.LogEntry {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		history := map[int][]queue.LogEntry{}
		missing := 0
		for _, id := range ids {
			entries, err := q.LeadHistory(context.Background(), memberID, int64(id))
			if err != nil {
				t.Fatalf("LeadHistory(%d) = %v", id, err)
			}
			history[id] = entries
			if !assigned(entries) {
				missing++
			}
		}
		if missing == 0 {
			return history
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d leads have no assignment after 30s", missing, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func assigned(entries []queue.LogEntry) bool {
	for _, e := range entries {
		if e.Outcome == queue.OutcomeAssigned {
			return true
		}
	}
	return false
}

// ownerWrites counts, per lead, the ONCRMLEADUPDATE events the portal sent after a
// change of the lead's responsible person: each is one write of an owner.
func ownerWrites(portal *bitrixtest.Portal) map[int]int {
	n := map[int]int{}
	for _, d := range portal.Deliveries() {
		if d.Event != "ONCRMLEADUPDATE" || d.Duplicate {
			continue
		}
		id, err := strconv.Atoi(d.Form.Get("data[FIELDS][ID]"))
		if err == nil {
			n[id]++
		}
	}
	return n
}

// assertConsumers checks that the named instances read the portal's stream.
func assertConsumers(t *testing.T, rdb redis.UniversalClient, memberID string, names ...string) {
	t.Helper()
	consumers, err := rdb.XInfoConsumers(context.Background(), keyspace.EventStream(memberID),
		"workers").Result()
	if err != nil {
		t.Fatalf("XINFO CONSUMERS = %v", err)
	}
	joined := map[string]bool{}
	for _, c := range consumers {
		joined[c.Name] = true
	}
	for _, name := range names {
		if !joined[name] {
			t.Errorf("instance %q never read the portal's stream (consumers %v)", name, consumers)
		}
	}
}

// assertTagged checks, on every master, that each key naming the portal lives in
// the portal's hash slot.
func assertTagged(t *testing.T, rdb redis.UniversalClient, memberID string) {
	t.Helper()
	var mu sync.Mutex // guards keys
	var keys []string
	err := redistest.ForEachNode(context.Background(), rdb,
		func(ctx context.Context, node *redis.Client) error {
			found, err := node.Keys(ctx, "*"+memberID+"*").Result()
			mu.Lock()
			keys = append(keys, found...)
			mu.Unlock()
			return err
		})
	if err != nil {
		t.Fatalf("KEYS on every master = %v", err)
	}
	if len(keys) < 5 {
		t.Fatalf("portal keys = %v, want the record, tokens, stream, log and routing state", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "lr:"+keyspace.Tag(memberID)+":") {
			t.Errorf("key %q lacks the portal's hash tag", k)
		}
	}
}

// TestReadinessOnCluster checks that /readyz follows every master of a cluster: a
// plain PING would reach one node and could pass while a third of the portals
// cannot be served.
func TestReadinessOnCluster(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.TestMode)
	cluster := redistest.StartCluster(t)
	app, err := newApplication(appConfig{PublicURL: "http://127.0.0.1:1", ClientID: "app.1",
		ClientSecret: "secret", OAuthURL: "http://127.0.0.1:1"}, clusterFromURL(t, cluster.URL()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("newApplication() = %v", err)
	}
	ready := func() int {
		rec := httptest.NewRecorder()
		app.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz with every master up = %d, want 200", code)
	}

	// The server answers SHUTDOWN by closing the connection, so the error says
	// nothing; the readiness check below is what fails if the node lives on.
	last := redis.NewClient(&redis.Options{Addr: cluster.Addrs[len(cluster.Addrs)-1],
		MaxRetries: -1})
	defer last.Close()
	last.ShutdownNoSave(context.Background())
	for range 10 {
		if ready() == http.StatusServiceUnavailable {
			return
		}
	}
	t.Errorf("/readyz with a master down = %d, want 503", ready())
}
