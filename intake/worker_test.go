package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

const annaPost = `{"first_name":"Anna","last_name":"Petrova","phone":"+7 (912) 345-67-89",
	"email":"anna@example.com","comment":"Call after 5","utm_source":"google"}`

func TestLeadsBornWithRoutedOwner(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	web := b.source(t, Options{})
	ads := b.source(t, Options{CRMSource: "ADVERTISING"})

	var got []int64
	for i, src := range []*Source{web, web, ads, web} {
		body := fmt.Sprintf(`{"name":"Anna %d","email":"anna@example.com"}`, i)
		rc := b.settled(t, src, b.accept(t, src, body, "").IntakeID)
		if rc.State != Created || rc.LeadID == 0 {
			t.Fatalf("post %d = %+v, want created", i, rc)
		}
		l := b.lead(t, rc.LeadID)
		if owner(l) != rc.Owner {
			t.Errorf("lead %d owner %d, receipt says %d", rc.LeadID, owner(l), rc.Owner)
		}
		if l["SOURCE_ID"] != src.Options.CRMSource || l["ORIGIN_ID"] != rc.IntakeID {
			t.Errorf("lead %d SOURCE_ID %v ORIGIN_ID %v, want %s %s", rc.LeadID,
				l["SOURCE_ID"], l["ORIGIN_ID"], src.Options.CRMSource, rc.IntakeID)
		}
		got = append(got, owner(l))
	}
	// Round robin between Ann and Bob; the ADVERTISING rule gives Carl his lead
	// without spending the team's turn.
	if diff := cmp.Diff([]int64{ann, bob, carl, ann}, got); diff != "" {
		t.Errorf("owners mismatch (-want +got):\n%s", diff)
	}
	if b.portal.LeadCount() != 4 {
		t.Errorf("portal has %d leads, want 4", b.portal.LeadCount())
	}
}

func TestCreatedLeadRecordedForPipeline(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{})
	rc := b.settled(t, src, b.accept(t, src, annaPost, "").IntakeID)
	ctx := context.Background()
	member := b.portal.MemberID()

	// The pipeline's own reading of its record: the lead's history, and its
	// ONCRMLEADADD settled as already routed without a read (TestIntakeLeadNotRoutedTwice).
	hist, err := queue.New(b.rdb, nil, nil, slog.New(slog.DiscardHandler), queue.Config{}).
		LeadHistory(ctx, member, rc.LeadID)
	if err != nil || len(hist) != 1 {
		t.Fatalf("LeadHistory(%d) = %+v, %v; want one assignment", rc.LeadID, hist, err)
	}
	if h := hist[0]; h.UserID != ann || h.Outcome != queue.OutcomeAssigned ||
		h.Person != "Ann Lee" || h.Reason == "" {
		t.Errorf("assignment = %+v, want Ann (2) with the reason", h)
	}
	// Recording the lead again (a retry after a failure) changes nothing.
	if err := b.svc.router.Created(ctx, member, rc.LeadID, Decision{Owner: bob}); err != nil {
		t.Fatalf("Created() again: %v", err)
	}
	if n, _ := b.rdb.LLen(ctx, keyspace.AssignmentLog(member)).Result(); n != 1 {
		t.Errorf("assignment log has %d entries, want 1", n)
	}
	// Deciding the created lead again gives the same owner and spends no turn.
	d, err := b.engine.Decide(ctx, member, routing.Lead{ID: rc.LeadID,
		Fields: map[string]string{"SOURCE_ID": "WEB"}}, routing.Directory{}, time.Now())
	if err != nil || !d.Repeated || d.UserID != ann {
		t.Errorf("Decide(created lead) = %+v, %v; want Ann's decision, repeated", d, err)
	}
	l := b.lead(t, rc.LeadID)
	want := map[string]any{"NAME": "Anna", "LAST_NAME": "Petrova", "COMMENTS": "Call after 5",
		"UTM_SOURCE": "google", "SOURCE_DESCRIPTION": "Landing"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("lead %s = %v, want %v", k, l[k], v)
		}
	}
	if tl := b.portal.Timeline(int(rc.LeadID)); len(tl) == 0 {
		t.Errorf("lead %d has no timeline comment with the reason", rc.LeadID)
	}
	// The person's details leave Redis once the lead exists.
	if n, _ := b.rdb.HExists(ctx, keyspace.IntakeRecord(member, rc.IntakeID), "lead").Result(); n {
		t.Error("the created post's record still holds the lead's details")
	}
}

func TestResponsibleOverride(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	open := b.source(t, Options{AllowResponsible: true})
	closed := b.source(t, Options{})

	rc := b.settled(t, open, b.accept(t, open, `{"name":"Anna","responsible":3}`, "").IntakeID)
	if got := owner(b.lead(t, rc.LeadID)); got != bob || rc.Problem != "" {
		t.Errorf("override to an active user: owner %d problem %q, want Bob (3)", got, rc.Problem)
	}
	rc = b.settled(t, open, b.accept(t, open,
		`{"fields":{"NAME":"Anna","ASSIGNED_BY_ID":5}}`, "").IntakeID)
	if got := owner(b.lead(t, rc.LeadID)); got != ann || rc.Problem == "" {
		t.Errorf("override to a dismissed user: owner %d problem %q; want routing's Ann (2) "+
			"and a note", got, rc.Problem)
	}

	post, err := Parse("application/json", []byte(`{"name":"Anna","responsible":3}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.svc.Accept(context.Background(), closed, post, "")
	var fe FieldErrors
	if !errors.As(err, &fe) || fe["responsible"] == "" {
		t.Errorf("Accept(override on a source without it) error = %v, want a responsible error", err)
	}
	if b.portal.LeadCount() != 2 {
		t.Errorf("portal has %d leads, want 2", b.portal.LeadCount())
	}
}

func TestRepeatedPostReturnsFirstLead(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{})
	first := b.accept(t, src, annaPost, "")
	again := b.accept(t, src, annaPost, "")
	if again.IntakeID != first.IntakeID || !again.Duplicate || again.State != Pending {
		t.Errorf("repeat while pending = %+v, want duplicate of %s", again, first.IntakeID)
	}
	keyed := b.accept(t, src, `{"name":"Anna"}`, "order-17")
	otherBody := b.accept(t, src, `{"name":"Anna, again"}`, "order-17")
	if otherBody.IntakeID != keyed.IntakeID || !otherBody.Duplicate {
		t.Errorf("same key, other body = %+v, want duplicate of %s", otherBody, keyed.IntakeID)
	}

	b.svc.Start(context.Background())
	created := b.settled(t, src, first.IntakeID)
	b.settled(t, src, keyed.IntakeID)
	later := b.accept(t, src, annaPost, "")
	if later.LeadID != created.LeadID || later.State != Created || !later.Duplicate {
		t.Errorf("repeat after creation = %+v, want lead %d", later, created.LeadID)
	}
	if b.portal.LeadCount() != 2 {
		t.Errorf("portal has %d leads, want 2", b.portal.LeadCount())
	}
}

func TestIdempotencyWindowEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{IdempotencyWindow: time.Second})
	first := b.accept(t, src, annaPost, "")
	time.Sleep(1100 * time.Millisecond)
	second := b.accept(t, src, annaPost, "")
	if second.Duplicate || second.IntakeID == first.IntakeID {
		t.Errorf("post after the window = %+v, want a new post", second)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{RatePerMinute: 2})
	ctx := context.Background()
	for i := range 2 {
		if _, err := b.svc.Allow(ctx, src); err != nil {
			t.Fatalf("Allow() #%d error = %v", i+1, err)
		}
	}
	wait, err := b.svc.Allow(ctx, src)
	if !errors.Is(err, ErrRateLimited) || wait <= 0 || wait > time.Minute {
		t.Errorf("Allow() #3 = %v, %v; want ErrRateLimited and a wait within a minute", wait, err)
	}
	other := b.source(t, Options{RatePerMinute: 2})
	if _, err := b.svc.Allow(ctx, other); err != nil {
		t.Errorf("Allow(another source) error = %v; limits are per source", err)
	}
}

func TestPostsSurviveOutages(t *testing.T) {
	tests := []struct {
		name   string
		faults bitrixtest.Faults
		// lookups says whether the workers must look leads up by ORIGIN_ID: only
		// when the portal may have run a call whose answer was lost.
		lookups bool
	}{
		{"rate limited", bitrixtest.Faults{QueryLimit: 1}, false},
		{"portal down", bitrixtest.Faults{Error5xx: 1}, true},
		{"answers lost after the lead was added", bitrixtest.Faults{Error5xxAfter: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, true)
			src := b.source(t, Options{})
			// A first lead while the portal is well: its people are known, so
			// during the outage the workers get as far as adding leads.
			b.settled(t, src, b.accept(t, src, `{"name":"Before"}`, "").IntakeID)
			b.srv.SetFaults(tt.faults)
			var ids []string
			for i := range 3 {
				ids = append(ids, b.accept(t, src, fmt.Sprintf(`{"name":"Anna %d"}`, i), "").IntakeID)
			}
			// Let the workers fail a few times.
			deadline := time.Now().Add(5 * time.Second)
			for {
				h, _ := b.rdb.HGet(context.Background(),
					keyspace.IntakeRecord(b.portal.MemberID(), ids[0]), "attempts").Int()
				if h >= 2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, id := range ids {
				rc, err := b.svc.Status(context.Background(), src, id)
				if err != nil || rc.State != Pending {
					t.Fatalf("Status(%s) during the outage = %+v, %v; want pending", id, rc, err)
				}
			}
			b.srv.SetFaults(bitrixtest.Faults{})
			leads := map[int64]bool{}
			for _, id := range ids {
				rc := b.settled(t, src, id)
				if rc.State != Created {
					t.Fatalf("post %s = %+v, want created", id, rc)
				}
				leads[rc.LeadID] = true
			}
			if len(leads) != 3 || b.portal.LeadCount() != 4 {
				t.Errorf("%d distinct leads, portal has %d; want 3 and 4", len(leads),
					b.portal.LeadCount())
			}
			lookups := 0
			for _, r := range b.srv.Requests() {
				if r.Method == "crm.lead.list" {
					lookups++
				}
			}
			if (lookups > 0) != tt.lookups {
				t.Errorf("%d look-ups by ORIGIN_ID, want some: %v", lookups, tt.lookups)
			}
		})
	}
}

func TestTimeLimitWaitsForReset(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{})
	b.srv.SetFaults(bitrixtest.Faults{OperationLimit: 1}) // resets a minute later
	rc := b.accept(t, src, annaPost, "")
	key := keyspace.IntakeRecord(b.portal.MemberID(), rc.IntakeID)
	deadline := time.Now().Add(5 * time.Second)
	var nextAt int64
	for nextAt == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		nextAt, _ = b.rdb.HGet(context.Background(), key, "next_at").Int64()
	}
	wait := time.Until(time.UnixMilli(nextAt))
	if wait < 50*time.Second || wait > 61*time.Second {
		t.Errorf("next attempt in %v, want at the method's reset about a minute later "+
			"(BackoffMax is 100ms)", wait)
	}
}

func TestAbandonedPostTakenOver(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{})
	rc := b.accept(t, src, annaPost, "")
	ctx := context.Background()
	stream := keyspace.IntakeStream(b.portal.MemberID())
	// A worker of another instance takes the post and dies before finishing it.
	if err := b.svc.ensureGroup(ctx, b.portal.MemberID()); err != nil {
		t.Fatal(err)
	}
	taken, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed",
		Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
	if err != nil || len(taken) != 1 || len(taken[0].Messages) != 1 {
		t.Fatalf("XREADGROUP as the crashed worker = %v, %v", taken, err)
	}
	b.svc.Start(ctx)
	if got := b.settled(t, src, rc.IntakeID); got.State != Created {
		t.Errorf("abandoned post = %+v, want created by another worker", got)
	}
	if n, _ := b.rdb.XLen(ctx, stream).Result(); n != 0 {
		t.Errorf("stream holds %d entries after the post was created, want 0", n)
	}
}

func TestRefusedLeadBecomesDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{})
	b.portal.SetAccessDenied(true)
	rc := b.settled(t, src, b.accept(t, src, annaPost, "").IntakeID)
	if rc.State != Failed || rc.Problem == "" {
		t.Fatalf("post refused by the portal = %+v, want failed with a problem", rc)
	}
	ctx := context.Background()
	dead, total, err := b.svc.DeadLetters(ctx, b.portal.MemberID(), 10)
	if err != nil || total != 1 || len(dead) != 1 {
		t.Fatalf("DeadLetters() = %v, %d, %v; want the post", dead, total, err)
	}
	want := DeadLetter{IntakeID: rc.IntakeID, SourceID: src.ID, SourceName: src.Name,
		Problem: rc.Problem}
	if d := dead[0]; d.At.IsZero() || time.Since(d.At) > time.Minute {
		t.Errorf("DeadLetters()[0].At = %v, want the time the post failed", d.At)
	}
	dead[0].At = time.Time{}
	if dead[0] != want {
		t.Errorf("DeadLetters()[0] = %+v, want %+v", dead[0], want)
	}
	b.portal.SetAccessDenied(false)
	if err := b.svc.Retry(ctx, b.portal.MemberID(), rc.IntakeID); err != nil {
		t.Fatalf("Retry() error = %v", err)
	}
	if got := b.settled(t, src, rc.IntakeID); got.State != Created {
		t.Errorf("retried post = %+v, want created", got)
	}
	if err := b.svc.Retry(ctx, b.portal.MemberID(), rc.IntakeID); !errors.Is(err, ErrUnknownPost) {
		t.Errorf("Retry(not dead) error = %v, want ErrUnknownPost", err)
	}
	if b.portal.LeadCount() != 1 {
		t.Errorf("portal has %d leads, want 1", b.portal.LeadCount())
	}
}

func TestPeopleReadOncePerBurst(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{})
	for i := range 6 {
		rc := b.accept(t, src, fmt.Sprintf(`{"name":"Anna %d"}`, i), "")
		b.settled(t, src, rc.IntakeID)
	}
	userReads, adds := 0, 0
	for _, r := range b.srv.Requests() {
		for _, m := range r.Batch {
			switch m {
			case "user.get":
				userReads++
			case "crm.lead.add":
				adds++
			}
		}
	}
	// The three people the settings name are read once; each lead costs one batch.
	if userReads != 3 || adds != 6 {
		t.Errorf("user.get commands %d, crm.lead.add commands %d; want 3 and 6", userReads, adds)
	}
}

func TestBurstCreatedInFewBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{RatePerMinute: 100})
	var ids []string
	for i := range 30 {
		ids = append(ids, b.accept(t, src, fmt.Sprintf(`{"name":"Anna %d"}`, i), "").IntakeID)
	}
	b.svc.Start(context.Background())
	owners := map[int64]int{}
	for _, id := range ids {
		rc := b.settled(t, src, id)
		owners[owner(b.lead(t, rc.LeadID))]++
	}
	calls := 0
	for _, r := range b.srv.Requests() {
		for _, m := range r.Batch {
			if m == "crm.lead.add" {
				calls++
				break
			}
		}
	}
	// The workers take 20 posts at a time: two REST calls add all 30 leads.
	if calls != 2 || b.portal.LeadCount() != 30 {
		t.Errorf("%d REST calls added %d leads, want 2 and 30", calls, b.portal.LeadCount())
	}
	if owners[ann] != 15 || owners[bob] != 15 {
		t.Errorf("owners = %v, want 15 each for Ann and Bob", owners)
	}
}

func TestStopLetsPostsInHandFinish(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{})
	b.srv.SetFaults(bitrixtest.Faults{Slow: 1, SlowBy: 300 * time.Millisecond})
	rc := b.accept(t, src, annaPost, "")
	ctx := context.Background()
	key := keyspace.IntakeRecord(b.portal.MemberID(), rc.IntakeID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if adding, _ := b.rdb.HExists(ctx, key, "adding").Result(); adding {
			break // the lead is being added
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never started adding the lead")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.svc.Stop(stopCtx); err != nil {
		t.Fatalf("Stop() error = %v", err)
	}
	got, err := b.svc.Status(ctx, src, rc.IntakeID)
	if err != nil || got.State != Created {
		t.Errorf("post in hand at Stop = %+v, %v; want created", got, err)
	}
}

func TestHeldLeadLeftToPipeline(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	src := b.source(t, Options{CRMSource: "PARTNER"})
	rc := b.settled(t, src, b.accept(t, src, annaPost, "").IntakeID)
	if rc.State != Created || rc.Owner != 0 {
		t.Fatalf("held post = %+v, want created without an owner of ours", rc)
	}
	ctx := context.Background()
	lead := strconv.FormatInt(rc.LeadID, 10)
	if ok, _ := b.rdb.HExists(ctx, keyspace.Routed(b.portal.MemberID()), lead).Result(); ok {
		t.Error("a held lead has a pipeline record; the pipeline would never route it")
	}
	if got := owner(b.lead(t, rc.LeadID)); got == ann || got == bob || got == carl {
		t.Errorf("held lead owner %d, want the portal's default, not a routed person", got)
	}
}

func TestWaitingPostsDoNotStarveNewOnes(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	src := b.source(t, Options{RatePerMinute: 100})
	ctx := context.Background()
	member := b.portal.MemberID()
	// 150 posts a crashed worker took, each waiting an hour for its next attempt:
	// more than the workers can claim before the first claimed are idle again.
	for i := range 150 {
		rc := b.accept(t, src, fmt.Sprintf(`{"name":"Anna %d"}`, i), "")
		b.rdb.HSet(ctx, keyspace.IntakeRecord(member, rc.IntakeID), "next_at",
			time.Now().Add(time.Hour).UnixMilli())
	}
	if err := b.svc.ensureGroup(ctx, member); err != nil {
		t.Fatal(err)
	}
	_, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed",
		Streams: []string{keyspace.IntakeStream(member), ">"}, Count: 150, Block: -1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // longer than ClaimIdle: all may be claimed
	fresh := b.accept(t, src, `{"name":"Fresh"}`, "")
	b.svc.Start(ctx)
	if rc := b.settled(t, src, fresh.IntakeID); rc.State != Created {
		t.Errorf("new post behind waiting ones = %+v, want created", rc)
	}
}

func TestTooManyAttemptsMakeDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	b.svc.cfg.MaxAttempts = 2
	src := b.source(t, Options{})
	b.srv.SetFaults(bitrixtest.Faults{Error5xx: 1})
	rc := b.accept(t, src, annaPost, "")
	b.svc.Start(context.Background())
	got := b.settled(t, src, rc.IntakeID)
	if got.State != Failed || got.Problem != "the portal could not be reached after 2 attempts" {
		t.Errorf("post after two failed attempts = %+v, want failed, unreachable", got)
	}
	dead, total, err := b.svc.DeadLetters(context.Background(), b.portal.MemberID(), 0)
	if err != nil || total != 1 || len(dead) != 1 {
		t.Errorf("DeadLetters() = %v, %d, %v; want the post", dead, total, err)
	}
}

func TestRetryAllSendsEveryDeadLetter(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	ctx := context.Background()
	src := b.source(t, Options{})
	b.portal.SetAccessDenied(true)
	var ids []string
	for _, post := range []string{`{"name":"First"}`, `{"name":"Second"}`} {
		rc := b.settled(t, src, b.accept(t, src, post, "").IntakeID)
		if rc.State != Failed {
			t.Fatalf("post refused by the portal = %+v, want failed", rc)
		}
		ids = append(ids, rc.IntakeID)
	}
	dead, total, err := b.svc.DeadLetters(ctx, b.portal.MemberID(), 1)
	if err != nil || total != 2 || len(dead) != 1 || dead[0].IntakeID != ids[1] {
		t.Fatalf("DeadLetters(limit 1) = %v, %d, %v; want the newest of 2", dead, total, err)
	}
	b.portal.SetAccessDenied(false)
	if n, err := b.svc.RetryAll(ctx, b.portal.MemberID()); n != 2 || err != nil {
		t.Fatalf("RetryAll() = %d, %v; want 2", n, err)
	}
	for _, id := range ids {
		if rc := b.settled(t, src, id); rc.State != Created {
			t.Errorf("retried post %s = %+v, want created", id, rc)
		}
	}
	if _, total, _ := b.svc.DeadLetters(ctx, b.portal.MemberID(), 0); total != 0 {
		t.Errorf("dead letters after RetryAll = %d, want 0", total)
	}
}

// TestReturningClientPostGoesToOwner posts leads of returning clients: one whose
// phone (in another format) belongs to Carl's company, one whose e-mail belongs to
// Bob's contact; each lead is born with that owner. A new client goes in turn.
func TestReturningClientPostGoesToOwner(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	ctx := context.Background()
	settings, _, err := b.engine.Settings(ctx, b.portal.MemberID())
	if err != nil {
		t.Fatal(err)
	}
	settings.ExistingClient = routing.ExistingClient{Enabled: true}
	if _, err := b.engine.SaveSettings(ctx, b.portal.MemberID(), settings, admin); err != nil {
		t.Fatal(err)
	}
	b.portal.AddCompany(carl, "+44 20 7946 0958", "")
	b.portal.AddContact(bob, "", "returning@example.com")
	src := b.source(t, Options{})
	for _, tc := range []struct {
		body string
		want int64
	}{
		{`{"name":"Company buyer","phone":"+442079460958"}`, carl},
		{`{"name":"Returning","email":"Returning@example.com"}`, bob},
		{`{"name":"New","email":"new@example.com"}`, ann},
	} {
		rc := b.settled(t, src, b.accept(t, src, tc.body, "").IntakeID)
		if rc.State != Created || rc.Owner != tc.want || owner(b.lead(t, rc.LeadID)) != tc.want {
			t.Errorf("post %s = %+v, want a lead of %d", tc.body, rc, tc.want)
		}
	}
}

// TestCreatedLeadGetsDeadlineCheck checks that a lead routed to a team with a
// response deadline gets its deadline check with its record, due from its creation,
// once; a lead no team chose gets none.
func TestCreatedLeadGetsDeadlineCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      Options
		body      string
		wantCheck bool
	}{
		{name: "team with a deadline", body: `{"name":"Anna"}`, wantCheck: true},
		{name: "rule to a person", opts: Options{CRMSource: "ADVERTISING"},
			body: `{"name":"Anna"}`},
		{name: "responsible named", opts: Options{AllowResponsible: true},
			body: `{"name":"Anna","responsible":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, true)
			ctx := context.Background()
			member := b.portal.MemberID()
			s, _, err := b.engine.Settings(ctx, member)
			if err != nil {
				t.Fatalf("Settings() error = %v", err)
			}
			s.Teams[0].Deadline = &routing.Deadline{Minutes: 30}
			if _, err := b.engine.SaveSettings(ctx, member, s, admin); err != nil {
				t.Fatalf("SaveSettings() error = %v", err)
			}
			src := b.source(t, tt.opts)
			before := time.Now()
			rc := b.settled(t, src, b.accept(t, src, tt.body, "").IntakeID)
			lead := strconv.FormatInt(rc.LeadID, 10)
			ms, err := b.rdb.ZScore(ctx, keyspace.Deadlines(member), lead).Result()
			if !tt.wantCheck {
				if !errors.Is(err, redis.Nil) {
					t.Errorf("deadline check = %v, %v; want none", ms, err)
				}
				return
			}
			due := time.UnixMilli(int64(ms))
			if err != nil || due.Before(before.Add(30*time.Minute)) ||
				due.After(time.Now().Add(30*time.Minute)) {
				t.Fatalf("deadline check = %v, %v; want one due 30 minutes after creation",
					due, err)
			}
			// Recording the lead again (a retry after a failure) moves nothing.
			var d Decision
			raw, _ := b.rdb.HGet(ctx, keyspace.IntakeRecord(member, rc.IntakeID),
				"decision").Result()
			if err := json.Unmarshal([]byte(raw), &d); err != nil {
				t.Fatalf("decode decision: %v", err)
			}
			router := &EngineRouter{Engine: b.engine, RDB: b.rdb,
				Now: func() time.Time { return time.Now().Add(time.Hour) }}
			if err := router.Created(ctx, member, rc.LeadID, d); err != nil {
				t.Fatalf("Created() again: %v", err)
			}
			again, err := b.rdb.ZScore(ctx, keyspace.Deadlines(member), lead).Result()
			if err != nil || again != ms {
				t.Errorf("deadline check after Created() again = %v, %v; want %v", again, err, ms)
			}
		})
	}
}
