package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
)

// TestFaultRun routes 2,000 leads over 20 portals while the fake portal fails
// requests (5xx before and after running them, rate-limit answers, methods over their
// time budget, with a short reset), loses, duplicates and reorders event deliveries,
// and one app instance is killed in the middle of its work and replaced while every
// portal's access token runs out. The fake portal's bucket drains at 50 requests a
// second here instead of 2, to keep the run short; the calls per lead are what the
// benchmarks measure.
func TestFaultRun(t *testing.T) {
	if testing.Short() {
		t.Skip("fault run skipped in -short mode")
	}
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200, DeliveryWorkers: 16})
	const portals, leadsEach, reps = 20, 100, 3
	var ps []*bitrixtest.Portal
	for i := range portals {
		ps = append(ps, e.install(t, fmt.Sprintf("fault%02d", i), reps))
	}
	e.fake.SetFaults(bitrixtest.Faults{Seed: 5, Error5xx: 0.04, Error5xxAfter: 0.02,
		QueryLimit: 0.04, OperationLimit: 0.01, OperationReset: 2 * time.Second,
		DropEvents: 0.03, DuplicateEvents: 0.1, ReorderEvents: 0.1})
	_, killA := e.startQueue(t, testConfig("instance-a"))

	createLeads(ps, leadsEach/2)
	waitFor(t, 60*time.Second, "a first share of leads routed", func() bool {
		return routedCount(t, e, ps) >= portals*leadsEach/4
	})
	killA()
	t.Logf("instance A killed with %d leads routed and %d entries pending",
		routedCount(t, e, ps), pendingCount(t, e, ps))
	// Every portal's access token runs out while instance B takes over.
	for _, p := range ps {
		p.ExpireAccessTokens()
	}
	createLeads(ps, leadsEach/2)
	e.startQueue(t, testConfig("instance-b"))

	waitFor(t, 90*time.Second, "every lead routed", func() bool {
		for _, p := range ps {
			if unassigned(p) > 0 {
				return false
			}
		}
		return true
	}, func() { dump(t, e, ps) })
	e.fake.SetFaults(bitrixtest.Faults{})
	waitFor(t, 30*time.Second, "queues drained", func() bool { return depth(t, e, ps) == 0 })
	for _, p := range ps {
		checkPortal(t, e, p, leadsEach, reps)
	}
}

// TestDowntimeRun creates leads while no instance runs and the app answers
// nothing; the instance started afterwards routes all of them.
func TestDowntimeRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bitrixtest.Options{Rate: 50, Burst: 200})
	p := e.install(t, "downtime", 2)
	_, kill := e.startQueue(t, testConfig("before"))
	createLeads([]*bitrixtest.Portal{p}, 4)
	waitFor(t, 20*time.Second, "leads routed before the downtime", func() bool {
		return unassigned(p) == 0
	})
	kill()
	e.down.Store(true)
	createLeads([]*bitrixtest.Portal{p}, 30)
	if n := unassigned(p); n != 30 {
		t.Fatalf("unassigned leads during downtime = %d, want 30", n)
	}
	e.down.Store(false)
	e.startQueue(t, testConfig("after"))
	waitFor(t, 20*time.Second, "leads from the downtime routed", func() bool {
		return unassigned(p) == 0
	})
	waitFor(t, 10*time.Second, "queue drained", func() bool {
		return depth(t, e, []*bitrixtest.Portal{p}) == 0
	})
	checkPortal(t, e, p, 34, 2)
}

// createLeads creates n leads on every portal at once, as the administrator.
func createLeads(ps []*bitrixtest.Portal, n int) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			for i := range n {
				p.AddLead(1, map[string]any{"TITLE": fmt.Sprintf("Lead %d", i), "SOURCE_ID": "WEB"})
			}
		})
	}
	wg.Wait()
}

type recordView struct {
	UserID  int64 `json:"u"`
	Written bool  `json:"w"`
}

// checkPortal checks that every lead has one owner among the reps, the one its
// record names, that the round robin spread the leads evenly, that every lead's
// timeline names one decision, and that nothing was dead-lettered.
func checkPortal(t *testing.T, e *env, p *bitrixtest.Portal, leads, reps int) {
	t.Helper()
	ctx := context.Background()
	recs, err := e.rdb.HGetAll(ctx, keyspace.Routed(p.MemberID())).Result()
	if err != nil {
		t.Fatal(err)
	}
	all := p.Leads()
	if len(all) != leads {
		t.Errorf("portal %s has %d leads, want %d", p.MemberID(), len(all), leads)
	}
	perRep := map[int64]int{}
	for _, l := range all {
		id := fmt.Sprint(l["ID"])
		owner, _ := strconv.ParseInt(fmt.Sprint(l["ASSIGNED_BY_ID"]), 10, 64)
		var rec recordView
		if err := json.Unmarshal([]byte(recs[id]), &rec); err != nil {
			t.Errorf("lead %s has no decision record: %v", id, err)
			continue
		}
		if rec.UserID != owner || !rec.Written {
			t.Errorf("lead %s owner = %d, record = %+v", id, owner, rec)
		}
		if owner < 2 || owner > int64(reps+1) {
			t.Errorf("lead %s owner = %d, not one of the reps", id, owner)
		}
		perRep[owner]++
		leadID, _ := strconv.Atoi(id)
		if notes := slices.Compact(p.Timeline(leadID)); len(notes) != 1 {
			t.Errorf("lead %s timeline = %q, want one decision", id, notes)
		}
	}
	lo, hi := leads, 0
	for _, n := range perRep {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(perRep) != reps || hi-lo > 1 {
		t.Errorf("portal %s leads per rep = %v, want an even round robin", p.MemberID(), perRep)
	}
	q := queue.New(e.rdb, nil, nil, e.log, queue.Config{})
	dead, err := q.DeadLetters(ctx, p.MemberID())
	if err != nil || len(dead) != 0 {
		t.Errorf("portal %s dead letters = %+v, %v; want none", p.MemberID(), dead, err)
	}
}

func routedCount(t *testing.T, e *env, ps []*bitrixtest.Portal) int {
	n := 0
	for _, p := range ps {
		c, _ := e.rdb.HLen(context.Background(), keyspace.Routed(p.MemberID())).Result()
		n += int(c)
	}
	return n
}

func pendingCount(t *testing.T, e *env, ps []*bitrixtest.Portal) int {
	n := 0
	for _, p := range ps {
		pend, err := e.rdb.XPending(context.Background(), keyspace.EventStream(p.MemberID()),
			"workers").Result()
		if err == nil {
			n += int(pend.Count)
		}
	}
	return n
}

func depth(t *testing.T, e *env, ps []*bitrixtest.Portal) int {
	n := 0
	for _, p := range ps {
		c, _ := e.rdb.XLen(context.Background(), keyspace.EventStream(p.MemberID())).Result()
		h, _ := e.rdb.ZCard(context.Background(), keyspace.Held(p.MemberID())).Result()
		n += int(c + h)
	}
	return n
}

// dump logs where each portal's work stands, for a run that did not finish.
func dump(t *testing.T, e *env, ps []*bitrixtest.Portal) {
	ctx := context.Background()
	q := queue.New(e.rdb, nil, nil, e.log, queue.Config{})
	ready, _ := e.rdb.ZRangeWithScores(ctx, keyspace.ReadyPortals(), 0, -1).Result()
	t.Logf("ready portals: %v (now %d)", ready, time.Now().UnixMilli())
	for _, p := range ps {
		st, _ := q.Stats(ctx, p.MemberID())
		dead, _ := q.DeadLetters(ctx, p.MemberID())
		pend, _ := e.rdb.XPending(ctx, keyspace.EventStream(p.MemberID()), "workers").Result()
		t.Logf("portal %s: unassigned %d, depth %d, pending %+v, held %d, dead %d %+v",
			p.MemberID(), unassigned(p), st.QueueDepth, pend, st.HeldNow, len(dead), dead)
	}
}
