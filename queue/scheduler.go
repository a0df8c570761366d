package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// leaseScript leases the portal that has waited longest for a worker.
//
// KEYS[1] ready portals (sorted set, score = not-before in Unix ms)
// ARGV[1] now in Unix ms
// ARGV[2] end of the lease in Unix ms
//
// Returns {member_id, ""} for the portal whose score was ≤ now, rescored to the
// lease's end; the new score is the lease token, and only its holder may release
// the portal while it stands. When no portal is due it returns {"", score} with the
// earliest score, or {"", ""} when the set is empty.
var leaseScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #due == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'', first[2] or ''}
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[1])
return {due[1], ''}
`)

// releaseScript ends a lease the caller still holds.
//
// KEYS[1] ready portals
// ARGV[1] member_id
// ARGV[2] lease token (the score the lease set)
// ARGV[3] next not-before in Unix ms, or "" to remove the portal
//
// Returns 1 when the lease was still held and has been ended, 0 when another worker
// took the portal over meanwhile (nothing is changed then).
var releaseScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 1
`)

// lease takes the longest-waiting due portal. When none is due it returns "" and
// the time the next one will be (zero when no portal has work).
func (q *Queue) lease(ctx context.Context) (memberID string, token int64, next time.Time,
	err error) {
	now := q.cfg.Now()
	if err := q.promote(ctx, now); err != nil {
		q.log.Warn("move due portals failed", "error", err)
	}
	token = now.Add(q.cfg.Lease).UnixMilli()
	res, err := leaseScript.Run(ctx, q.rdb, []string{keyspace.ReadyPortals()},
		now.UnixMilli(), token).StringSlice()
	if err != nil || len(res) != 2 {
		return "", 0, time.Time{}, fmt.Errorf("lease a portal: %w %v", err, res)
	}
	if res[0] != "" {
		return res[0], token, time.Time{}, nil
	}
	if ms, err := strconv.ParseFloat(res[1], 64); err == nil {
		next = time.UnixMilli(int64(ms))
	}
	return "", 0, next, nil
}

// turnEnd says when a portal should next be worked on after a turn.
type turnEnd struct {
	// notBefore, when set, pauses the portal until then (the portal asked us to
	// slow down, or a retry waits for its backoff).
	notBefore time.Time
}

// release hands the portal back after a turn: to the back of the line when it has
// more work, paused when it asked to slow down, or out of the set when idle. The idle
// case re-checks the stream after removing the portal, because an Enqueue between
// our look and the removal would otherwise leave its entry unscheduled: whatever is
// appended before the re-check is seen by it, and whatever is appended after the
// removal re-adds the portal itself.
func (q *Queue) release(ctx context.Context, memberID string, token int64, end turnEnd) error {
	key := []string{keyspace.ReadyPortals()}
	now := q.cfg.Now()
	next, later, err := q.nextWork(ctx, memberID, now)
	if err != nil {
		return err
	}
	if end.notBefore.After(next) {
		next = end.notBefore
	}
	score := ""
	if !next.IsZero() {
		score = strconv.FormatInt(next.UnixMilli(), 10)
	}
	if err := releaseScript.Run(ctx, q.rdb, key, memberID, token, score).Err(); err != nil {
		return fmt.Errorf("release portal %s: %w", memberID, err)
	}
	if err := q.markLater(ctx, memberID, later); err != nil {
		return err
	}
	if score != "" {
		return nil
	}
	next, _, err = q.nextWork(ctx, memberID, now)
	if err != nil || next.IsZero() {
		return err
	}
	pipe := q.rdb.Pipeline()
	q.markReady(ctx, pipe, memberID, next)
	_, err = pipe.Exec(ctx)
	return err
}

// nextWork returns when the portal's stream next needs a turn: now when it holds
// entries nobody is working on, a little later when all its entries are pending
// with another consumer (they may need taking over), or the zero time. later is
// when its first held lead or deadline check comes due, zero when it has none.
func (q *Queue) nextWork(ctx context.Context, memberID string,
	now time.Time) (next, later time.Time, err error) {
	stream := keyspace.EventStream(memberID)
	pipe := q.rdb.Pipeline()
	xlen := pipe.XLen(ctx, stream)
	pending := pipe.XPending(ctx, stream, group)
	held := pipe.ZRangeWithScores(ctx, keyspace.Held(memberID), 0, 0)
	checks := pipe.ZRangeWithScores(ctx, keyspace.Deadlines(memberID), 0, 0)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !isNoGroup(err) {
		return time.Time{}, time.Time{}, fmt.Errorf("look for work of portal %s: %w",
			memberID, err)
	}
	var inFlight int64
	if p, err := pending.Result(); err == nil {
		inFlight = p.Count
	}
	for _, zs := range [][]redis.Z{held.Val(), checks.Val()} {
		if len(zs) > 0 {
			later = earliest(later, time.UnixMilli(int64(zs[0].Score)))
		}
	}
	switch {
	case xlen.Val() > inFlight:
		return now, later, nil
	case xlen.Val() > 0:
		return now.Add(q.cfg.Lease / 2), later, nil
	}
	return time.Time{}, later, nil
}

// earliest returns the earlier of two times, the zero time counting as none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// markLater notes when the portal's held leads or deadline checks come due.
func (q *Queue) markLater(ctx context.Context, memberID string, later time.Time) error {
	if later.IsZero() {
		return nil
	}
	err := q.rdb.ZAdd(ctx, keyspace.LaterPortals(),
		redis.Z{Score: float64(later.UnixMilli()), Member: memberID}).Err()
	if err != nil {
		return fmt.Errorf("schedule later work of portal %s: %w", memberID, err)
	}
	return nil
}

// promoteEvery is how often an instance moves portals whose later work came due
// among the portals with work.
const promoteEvery = time.Second

// promote moves the portals whose held leads or deadline checks came due from
// keyspace.LaterPortals to keyspace.ReadyPortals, at most once per promoteEvery on
// this instance. The two sets have no common hash tag, so the move is two steps: a
// portal is added first and its later mark removed only while it still holds the
// time read, so a release that marked a new time in between keeps it.
func (q *Queue) promote(ctx context.Context, now time.Time) error {
	last := q.promoted.Load()
	if now.UnixMilli()-last < promoteEvery.Milliseconds() ||
		!q.promoted.CompareAndSwap(last, now.UnixMilli()) {
		return nil
	}
	due, err := q.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: keyspace.LaterPortals(), ByScore: true, Start: "-inf",
		Stop: strconv.FormatInt(now.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return fmt.Errorf("read due later portals: %w", err)
	}
	if len(due) == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	args := make([]any, 0, 2*len(due))
	for _, z := range due {
		pipe.ZAddNX(ctx, keyspace.ReadyPortals(), z)
		args = append(args, z.Member, strconv.FormatFloat(z.Score, 'f', -1, 64))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark due portals ready: %w", err)
	}
	err = unmarkScript.Run(ctx, q.rdb, []string{keyspace.LaterPortals()}, args...).Err()
	if err != nil {
		return fmt.Errorf("remove later marks of due portals: %w", err)
	}
	return nil
}

// unmarkScript removes later marks that still hold the time read.
//
// KEYS[1] later portals (keyspace.LaterPortals)
// ARGV    member_id, score, member_id, score, ...
//
// Returns the number of marks removed.
var unmarkScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

func isNoGroup(err error) bool {
	return err != nil && len(err.Error()) >= 7 && err.Error()[:7] == "NOGROUP"
}
