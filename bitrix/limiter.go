package bitrix

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Limiter keeps the requests of all app instances to one portal inside the
// portal's leaky bucket.
type Limiter interface {
	// Wait blocks until one request (a batch counts as one) may be sent to the
	// portal, or until ctx is done.
	Wait(ctx context.Context, memberID string) error
	// Backoff records that the portal refused a request for its rate; until is
	// when the portal said to come back, or zero when it did not say.
	Backoff(ctx context.Context, memberID string, until time.Time)
}

// MethodLimiter is a Limiter that also remembers when a single method has used
// up its time budget (OPERATION_TIME_LIMIT), so that calls to that method fail
// fast without spending a request until the budget resets. RedisLimiter
// implements it; the Client uses it when its Limiter does.
type MethodLimiter interface {
	Limiter
	// WaitMethod is Wait for a call of method; while the method is blocked it
	// returns an *Error of class ErrOperationLimit with ResetAt set.
	WaitMethod(ctx context.Context, memberID, method string) error
	// BlockMethod records that method may not be called before until.
	BlockMethod(ctx context.Context, memberID, method string, until time.Time)
}

// Limit is a portal's leaky bucket: it drains Rate requests a second and holds
// Burst requests.
type Limit struct {
	Rate  float64
	Burst int
}

// The leaky buckets of Bitrix24's plans.
var (
	StandardLimit   = Limit{Rate: 2, Burst: 50}
	EnterpriseLimit = Limit{Rate: 5, Burst: 250}
)

// RedisLimiter is a Limiter whose bucket state lives in Redis, in the key
// keyspace.RateLimit(memberID), so that every instance of the app shares one
// bucket per portal. Each Wait is one script call: it reserves the next free
// slot in the bucket and sleeps until it comes. The bucket drains by the Redis
// server's clock, so the instances' clocks do not matter for pacing; only the
// absolute times given to Backoff and BlockMethod are compared with it.
//
// It leaves two requests of the bucket free (see headroom); the drain rate is
// used in full.
//
// A RedisLimiter is safe for concurrent use. The zero value is not usable; call
// NewRedisLimiter.
type RedisLimiter struct {
	rdb redis.UniversalClient
	def Limit

	mu     sync.RWMutex // guards limits
	limits func(memberID string) (Limit, bool)
}

// NewRedisLimiter returns a limiter that allows every portal rate requests a
// second with a bucket of burst; zero or negative values take the standard
// plan's 2 and 50.
func NewRedisLimiter(rdb redis.UniversalClient, rate float64, burst int) *RedisLimiter {
	def := StandardLimit
	if rate > 0 {
		def.Rate = rate
	}
	if burst > 0 {
		def.Burst = burst
	}
	return &RedisLimiter{rdb: rdb, def: def}
}

// SetPortalLimits installs a look-up of per-portal limits, for portals on a
// plan with a larger bucket (EnterpriseLimit). It is called on every Wait and
// must be fast; ok false falls back to the limiter's default.
func (l *RedisLimiter) SetPortalLimits(fn func(memberID string) (Limit, bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = fn
}

// limit is the bucket the limiter fills for memberID: the portal's, less the
// headroom.
func (l *RedisLimiter) limit(memberID string) Limit {
	l.mu.RLock()
	fn := l.limits
	l.mu.RUnlock()
	lim := l.def
	if fn != nil {
		if pl, ok := fn(memberID); ok && pl.Rate > 0 && pl.Burst > 0 {
			lim = pl
		}
	}
	lim.Burst -= headroom(lim.Burst)
	return lim
}

// headroom is how many requests of a bucket of burst the limiter leaves
// free: two in buckets of ten or more, none in smaller ones. A request granted
// at the edge of a full bucket may reach the portal a little early after one
// that was held up on the way, or meet a request of another app calling from
// the same address; the headroom absorbs that (a second of jitter at 2
// requests a second) instead of spending a refused request, and costs the
// first burst only two requests.
func headroom(burst int) int {
	if burst < 10 {
		return 0
	}
	return 2
}

// Wait implements Limiter.
func (l *RedisLimiter) Wait(ctx context.Context, memberID string) error {
	return l.WaitMethod(ctx, memberID, "")
}

// WaitMethod implements MethodLimiter. When the wait needed is longer than
// ctx allows, it returns at once with an error wrapping
// context.DeadlineExceeded, and the slot is not taken.
func (l *RedisLimiter) WaitMethod(ctx context.Context, memberID, method string) error {
	maxWait := int64(-1)
	if d, ok := ctx.Deadline(); ok {
		maxWait = max(0, time.Until(d).Milliseconds())
	}
	res, err := l.run(ctx, memberID, "take", maxWait, method)
	if err != nil {
		return fmt.Errorf("wait for rate limit of portal %s: %w", memberID, err)
	}
	switch res[0] {
	case verdictBlocked:
		return &Error{
			Code:        "OPERATION_TIME_LIMIT",
			Description: "method blocked until its time budget resets",
			Method:      method,
			ResetAt:     time.UnixMilli(res[1]),
		}
	case verdictTooLong:
		return fmt.Errorf("wait %s for rate limit of portal %s: %w",
			time.Duration(res[1])*time.Millisecond, memberID, context.DeadlineExceeded)
	}
	delay := time.Duration(res[1]) * time.Millisecond
	limiterWait.Observe(delay.Seconds())
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for rate limit of portal %s: %w", memberID, ctx.Err())
	}
}

// Backoff implements Limiter: the bucket counts as full from now on, and no
// slot is handed out before until (or before one drain interval when until is
// zero). A failure to reach Redis is not reported: the next Wait meets it.
func (l *RedisLimiter) Backoff(ctx context.Context, memberID string, until time.Time) {
	l.run(ctx, memberID, "backoff", unixMilli(until), "")
}

// BlockMethod implements MethodLimiter.
func (l *RedisLimiter) BlockMethod(ctx context.Context, memberID, method string, until time.Time) {
	if method == "" || until.IsZero() {
		return
	}
	l.run(ctx, memberID, "block", unixMilli(until), method)
}

// Verdicts of the limiter script.
const (
	verdictGranted = 0 // a slot is reserved; the second value is the wait in ms
	verdictBlocked = 1 // the method is blocked; the second value is the reset, unix ms
	verdictTooLong = 2 // the wait in ms (second value) exceeds the caller's limit
)

func (l *RedisLimiter) run(ctx context.Context, memberID, mode string, arg int64,
	method string) ([2]int64, error) {
	lim := l.limit(memberID)
	keys := []string{keyspace.RateLimit(memberID)}
	args := []any{mode, strconv.FormatFloat(lim.Rate, 'f', -1, 64), lim.Burst, arg, method}
	vals, err := limiterScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return [2]int64{}, err
	}
	if len(vals) != 2 {
		return [2]int64{}, errors.New("limiter script returned a malformed answer")
	}
	return [2]int64{vals[0], vals[1]}, nil
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// limiterScript is the whole limiter: one leaky bucket per portal, measured in
// requests, draining at the portal's rate. The level may rise above the bucket
// size: the part above it is slots already promised to waiting callers.
//
// KEYS[1] the portal's hash (keyspace.RateLimit): level (requests in the
//
//	bucket, float), at (unix ms of level), until (no slot before, unix ms),
//	hold (latest method block, unix ms), m:<method> (method blocked until, ms)
//
// ARGV[1] mode: "take" a slot, "backoff" after QUERY_LIMIT_EXCEEDED, or
//
//	"block" a method after OPERATION_TIME_LIMIT
//
// ARGV[2] drain rate, requests per second
// ARGV[3] bucket size
// ARGV[4] take: longest acceptable wait in ms, -1 for any;
//
//	backoff and block: until, unix ms, 0 when unknown
//
// ARGV[5] method name for take (may be empty) and block
//
// Returns {verdict, value}: {0, wait ms} when a slot was reserved;
// {1, reset unix ms} when the method is blocked; {2, wait ms} when the wait
// would exceed ARGV[4] (nothing reserved); {0, 0} for backoff and block.
var limiterScript = redis.NewScript(`
local key = KEYS[1]
local mode = ARGV[1]
local rate = tonumber(ARGV[2]) / 1000
local burst = tonumber(ARGV[3])
local arg = tonumber(ARGV[4])
local method = ARGV[5]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local st = redis.call('HMGET', key, 'level', 'at', 'until', 'hold')
local level = tonumber(st[1]) or 0
local at = tonumber(st[2]) or now
local untl = tonumber(st[3]) or 0
local hold = tonumber(st[4]) or 0
level = math.max(0, level - math.max(0, now - at) * rate)

local result = {0, 0}
if mode == 'take' then
  if method ~= '' then
    local blocked = tonumber(redis.call('HGET', key, 'm:' .. method))
    if blocked and blocked > now then
      return {1, blocked}
    end
  end
  local wait = math.max(0, untl - now, (level + 1 - burst) / rate)
  wait = math.ceil(wait)
  if arg >= 0 and wait > arg then
    return {2, wait}
  end
  level = level + 1
  result = {0, wait}
elseif mode == 'backoff' then
  level = math.max(level, burst)
  if arg <= now then
    arg = now + math.ceil(1 / rate)
  end
  untl = math.max(untl, arg)
elseif mode == 'block' then
  if arg > now then
    redis.call('HSET', key, 'm:' .. method, arg)
    hold = math.max(hold, arg)
  end
end

redis.call('HSET', key, 'level', tostring(level), 'at', now, 'until', untl, 'hold', hold)
local ttl = math.max(level / rate, untl - now, hold - now, 0)
redis.call('PEXPIRE', key, math.ceil(ttl) + 1000)
return result
`)
