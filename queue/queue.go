// Package queue turns lead events into assignments: durably, once per lead, within
// each portal's REST rate limit, and fairly between portals.
//
// Events land in a Redis Stream per portal (Enqueue). Every instance runs workers in
// one consumer group. A global sorted set of portals with work (keyspace.ReadyPortals)
// schedules them: a worker leases one portal by pushing its score to the lease's end,
// takes at most one batch (≤ 50 leads), and yields the portal to the back of the set.
// A worker that dies leaves its lease to expire and its entries pending; the next
// worker to lease the portal takes them over with XAUTOCLAIM. A portal whose first
// waiting event is younger than Config.Gather waits a moment for more, so that a
// burst is read in full batches.
//
// For each batch the worker reads the leads with one REST batch call (crm.lead.get
// ×N, plus the people the settings need, cached for a minute, and one batch of
// contact look-ups when returning clients go to their owner), asks routing for each
// decision, records the decisions (keyspace.Routed) in one script call before
// writing anything back, and then writes the owners, notifications and timeline
// comments packed into 50-command batches. A lead whose record says it was written
// is never routed again; a decision recorded but not yet written is written again
// with the same owner, so duplicated deliveries, retries and crashes never give a
// lead two owners. The ONCRMLEADUPDATE that the app's own write causes is
// recognised by the time of that write in the lead's record (Config.OwnWriteTTL),
// without reading the lead.
//
// Temporary failures are retried by re-appending the entry with a higher attempt
// count while the portal is paused; QUERY_LIMIT_EXCEEDED, and OPERATION_TIME_LIMIT
// of the batch call itself, pause only that portal and cost no attempt. A single
// method over its time budget pauses nothing: the leads that needed it wait among
// the held leads until its reset, at no attempt, and the portal's other work goes
// on. Permanent failures (access denied,
// portal blocked) go to the portal's dead-letter list with their reason, where
// Retry picks them up; a lead a person deleted meanwhile is no failure and is
// dropped, held or not. A sweep drains each portal's offline events
// every Config.SweepEvery, and at start and every Config.ListEvery also lists the
// leads created since the app's activation, so leads whose events never arrived
// are routed too.
//
// An update of a lead the app has routed is routed again only when the settings ask
// for it (routing.Settings.Reroute) and a person moved the lead into a listed status
// since the decision; then the lead is decided in its next round, once (reroute.go).
// With that option on, every update of a routed lead costs a place in a read batch.
// Without it, the updates of the first Config.MoveWindow after the decision that are
// not the echo of the app's own write cost the same, and a change of owner they show
// is kept in the lead's record as a move (LeadMoves).
// A lead that a team with a response deadline assigned is checked when the
// deadline passes, and passed on in the team when its owner has not taken it up
// (deadline.go); each check costs a place in a read batch.
// ONCRMLEADDELETE is accepted and ignored.
package queue

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// group is the consumer group every instance reads the event streams through.
const group = "workers"

// maxBatch is the most leads one step takes, and the most commands a REST batch holds.
const maxBatch = 50

// Config tunes the pipeline. The zero value of each field means its default.
type Config struct {
	// Consumer names this instance in the consumer group; default host name and a
	// random suffix. It must differ between running instances.
	Consumer string
	// Workers is the number of portals this instance works on at once (default 4).
	Workers int
	// BatchSize is the most leads taken from a portal in one turn (default and max 50).
	BatchSize int
	// Lease is how long a worker may hold a portal before another may take it over,
	// and how long an entry stays pending before it counts as abandoned (default 30s).
	Lease time.Duration
	// Poll is the longest an idle worker waits before looking for work again
	// (default 200ms). Enqueue on the same instance wakes workers at once.
	Poll time.Duration
	// Gather is how long a portal's first waiting event may wait for more to fill
	// a batch (default 300ms; negative: never wait).
	Gather time.Duration
	// RetryBase and RetryMax bound the backoff of temporary failures (1s, 5m).
	RetryBase, RetryMax time.Duration
	// MaxAttempts is how many times a temporary failure is retried before the lead is
	// dead-lettered (default 10).
	MaxAttempts int
	// HoldRetry is how soon a held lead is decided again (default 1m).
	HoldRetry time.Duration
	// OwnWriteTTL is how long after the app's own write of an owner an update of
	// the lead counts as that write's echo (default 10m).
	OwnWriteTTL time.Duration
	// MoveWindow is how long after its decision every update of a routed lead is
	// read (in the batches the turn reads anyway) to see whether a person gave it to
	// somebody else, for the lead's tab (default 14 days; negative: never).
	MoveWindow time.Duration
	// IntakeWait is how long the ONCRMLEADADD of a lead the intake webhook created
	// (IntakeOriginator) waits for intake to record its owner before the lead is
	// routed like any other, in case the intake worker died (default 2m); such a lead
	// is looked at again every IntakeRecheck (default 1s).
	IntakeWait, IntakeRecheck time.Duration
	// DirectoryTTL is how long a portal's people are cached by this instance (1m).
	DirectoryTTL time.Duration
	// SweepEvery is how often each active portal's offline events are drained for
	// leads whose events never arrived (default 5m; negative disables the periodic
	// sweep, not the one at start).
	SweepEvery time.Duration
	// ListEvery is how often a sweep also lists the portal's new leads, the safety
	// net for lost offline events (default 1h; every sweep at start lists).
	ListEvery time.Duration
	// LogCap and DeadCap cap the assignment log and the dead-letter list (1000 each).
	LogCap, DeadCap int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		c.Consumer = host + "-" + hex.EncodeToString(b[:])
	}
	c.Workers = cmp.Or(c.Workers, 4)
	if c.BatchSize <= 0 || c.BatchSize > maxBatch {
		c.BatchSize = maxBatch
	}
	c.Lease = cmp.Or(c.Lease, 30*time.Second)
	c.Poll = cmp.Or(c.Poll, 200*time.Millisecond)
	c.Gather = cmp.Or(c.Gather, 300*time.Millisecond)
	c.RetryBase = cmp.Or(c.RetryBase, time.Second)
	c.RetryMax = cmp.Or(c.RetryMax, 5*time.Minute)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 10)
	c.HoldRetry = cmp.Or(c.HoldRetry, time.Minute)
	c.OwnWriteTTL = cmp.Or(c.OwnWriteTTL, 10*time.Minute)
	c.MoveWindow = cmp.Or(c.MoveWindow, 14*24*time.Hour)
	c.IntakeWait = cmp.Or(c.IntakeWait, 2*time.Minute)
	c.IntakeRecheck = cmp.Or(c.IntakeRecheck, time.Second)
	c.DirectoryTTL = cmp.Or(c.DirectoryTTL, time.Minute)
	c.SweepEvery = cmp.Or(c.SweepEvery, 5*time.Minute)
	c.ListEvery = cmp.Or(c.ListEvery, time.Hour)
	c.LogCap = cmp.Or(c.LogCap, 1000)
	c.DeadCap = cmp.Or(c.DeadCap, 1000)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Queue is the lead pipeline of one app instance. It is safe for concurrent use.
// Enqueue works without Start; Start runs the workers and the sweep until Stop.
type Queue struct {
	rdb     redis.UniversalClient
	decider Decider
	portals Portals
	log     *slog.Logger
	cfg     Config

	people *People
	wake   chan struct{} // signalled by Enqueue to wake an idle worker

	mu       sync.Mutex // guards stopLoop, abort and done
	stopLoop context.CancelFunc
	abort    context.CancelFunc
	done     chan struct{}

	groupOK   sync.Map // member_id → struct{}: consumer group known to exist
	appenders sync.Map // Redis node address → *appender (append.go)

	promoted atomic.Int64 // Unix ms this instance last moved due portals (promote)
}

// New returns the pipeline over rdb. decider and portals may be nil for a Queue
// that only enqueues (the event receiver of an instance that runs no workers).
func New(rdb redis.UniversalClient, decider Decider, portals Portals, log *slog.Logger,
	cfg Config) *Queue {
	cfg = cfg.withDefaults()
	return &Queue{
		rdb: rdb, decider: decider, portals: portals, log: log, cfg: cfg,
		people: NewPeople(cfg.DirectoryTTL, cfg.Now),
		wake:   make(chan struct{}, 1),
	}
}

// Item is one unit of work on the stream: a lead to look at, and why.
type Item struct {
	// Event is the event name (bitrix.EventLeadAdd, ...), or SourceSweep, SourceRetry,
	// SourceOffline for work the pipeline found itself.
	Event string
	// LeadID is the lead, 0 for items that are not about one lead (ONOFFLINEEVENT).
	LeadID int64
	// At is when the work arrived; the zero value means now.
	At time.Time
	// Attempt counts earlier temporary failures of this work.
	Attempt int
}

// Sources of work that are not portal events.
const (
	SourceSweep = "sweep" // the reconciliation sweep found a lead with no decision
	SourceRetry = "retry" // the administrator retried a dead letter
)

func (it Item) values(now time.Time) map[string]any {
	at := it.At
	if at.IsZero() {
		at = now
	}
	return map[string]any{
		"event": it.Event, "lead": it.LeadID,
		"at": at.UnixMilli(), "attempt": it.Attempt,
	}
}

// Enqueue appends it to the portal's stream and marks the portal as having work,
// and returns once Redis has answered both. Both commands go in one round trip,
// shared with the appends of concurrent calls (append.go).
func (q *Queue) Enqueue(ctx context.Context, memberID string, it Item) error {
	if err := q.ensureGroup(ctx, memberID); err != nil {
		return err
	}
	now := q.cfg.Now()
	err := q.appendTo(&appendReq{ctx: ctx, memberID: memberID, values: it.values(now), at: now,
		done: make(chan error, 1)})
	if err != nil {
		return fmt.Errorf("enqueue lead %d of portal %s: %w", it.LeadID, memberID, err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// markReady queues ZADD NX: a portal already present keeps its score, so a lease or
// a pause is not cut short by new work.
func (q *Queue) markReady(ctx context.Context, pipe redis.Pipeliner, memberID string,
	at time.Time) *redis.IntCmd {
	return pipe.ZAddNX(ctx, keyspace.ReadyPortals(),
		redis.Z{Score: float64(at.UnixMilli()), Member: memberID})
}

// ensureGroup creates the portal's stream and consumer group once per process.
func (q *Queue) ensureGroup(ctx context.Context, memberID string) error {
	if _, ok := q.groupOK.Load(memberID); ok {
		return nil
	}
	err := q.rdb.XGroupCreateMkStream(ctx, keyspace.EventStream(memberID), group, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return fmt.Errorf("create consumer group of portal %s: %w", memberID, err)
	}
	q.groupOK.Store(memberID, struct{}{})
	return nil
}

func isBusyGroup(err error) bool {
	return err != nil && len(err.Error()) >= 9 && err.Error()[:9] == "BUSYGROUP"
}

// Start runs the workers and the reconciliation sweep until Stop or until ctx ends.
// It needs a decider and portals. Calling Start twice without Stop is an error.
func (q *Queue) Start(ctx context.Context) error {
	if q.decider == nil || q.portals == nil {
		return errors.New("start queue: no decider or portals")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done != nil {
		return errors.New("start queue: already started")
	}
	// workCtx ends batches in flight; loopCtx only stops taking new ones.
	workCtx, abort := context.WithCancel(ctx)
	loopCtx, stopLoop := context.WithCancel(workCtx)
	done := make(chan struct{})
	q.stopLoop, q.abort, q.done = stopLoop, abort, done
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() { q.work(loopCtx, workCtx) })
	}
	wg.Go(func() { q.sweepLoop(loopCtx) })
	wg.Go(func() { q.lagLoop(loopCtx) })
	go func() {
		wg.Wait()
		close(done)
	}()
	q.log.Info("queue started", "consumer", q.cfg.Consumer, "workers", q.cfg.Workers)
	return nil
}

// Stop stops taking new work, lets the batches in flight finish until ctx ends, and
// returns. Entries of a batch cut short stay pending and are taken over later by
// any instance. Stop is idempotent.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	stopLoop, abort, done := q.stopLoop, q.abort, q.done
	q.stopLoop, q.abort, q.done = nil, nil, nil
	q.mu.Unlock()
	if done == nil {
		return nil
	}
	stopLoop()
	defer abort()
	select {
	case <-done:
		q.log.Info("queue stopped", "consumer", q.cfg.Consumer)
		return nil
	case <-ctx.Done():
		abort()
		<-done
		return fmt.Errorf("stop queue: %w", ctx.Err())
	}
}

// Forget stops scheduling an uninstalled portal: its place among the portals with
// work is removed, and with clean its stream, records, log, dead letters and
// counters too (lifecycle may remove every key of the portal itself; Forget does not
// rely on it). Its signature fits lifecycle.UninstallHook.
func (q *Queue) Forget(ctx context.Context, memberID string, clean bool) error {
	pipe := q.rdb.Pipeline()
	pipe.ZRem(ctx, keyspace.ReadyPortals(), memberID)
	pipe.ZRem(ctx, keyspace.LaterPortals(), memberID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forget portal %s: %w", memberID, err)
	}
	q.groupOK.Delete(memberID)
	if !clean {
		return nil
	}
	keys := []string{keyspace.EventStream(memberID), keyspace.Routed(memberID),
		keyspace.Held(memberID), keyspace.Deadlines(memberID), keyspace.DeadLetters(memberID),
		keyspace.AssignmentLog(memberID), keyspace.LastLead(memberID),
		keyspace.SweepLock(memberID)}
	now := q.cfg.Now().UTC()
	for i := range 9 {
		day := now.AddDate(0, 0, -i).Format(time.DateOnly)
		keys = append(keys, keyspace.PipelineStats(memberID, day))
	}
	pipe = q.rdb.Pipeline()
	for _, k := range keys {
		pipe.Del(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("delete pipeline data of portal %s: %w", memberID, err)
	}
	return nil
}

// itoa formats an ID for Redis fields and REST command IDs.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
