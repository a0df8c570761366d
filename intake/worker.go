package intake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// group is the consumer group of every portal's intake stream.
const group = "intake"

// createdTTL is how long the record of a created post stays readable.
const createdTTL = 7 * 24 * time.Hour

// readyPortals returns the portals that may have intake work, with their post
// counters.
func (s *Service) readyPortals(ctx context.Context) (map[string]float64, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, keyspace.IntakePortals(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read intake portals: %w", err)
	}
	out := make(map[string]float64, len(zs))
	for _, z := range zs {
		if m, ok := z.Member.(string); ok {
			out[m] = z.Score
		}
	}
	return out, nil
}

// forgetScript removes a portal from the ready set if nothing was posted since
// the worker read its counter. KEYS[1] the ready set; ARGV[1] member_id, ARGV[2]
// the counter read. Returns 1 when removed.
var forgetScript = redis.NewScript(`
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
	return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`)

// drain works on the portal's posts until its stream has nothing this worker may
// take now, or loopCtx ends; posts are worked on in ctx. A stream left empty takes
// the portal off the ready set.
func (s *Service) drain(loopCtx, ctx context.Context, memberID string, score float64) {
	if err := s.ensureGroup(ctx, memberID); err != nil {
		s.log.Warn("create intake consumer group", "member_id", memberID, "error", err)
		return
	}
	for loopCtx.Err() == nil {
		entries, err := s.take(ctx, memberID)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("read intake stream", "member_id", memberID, "error", err)
			}
			return
		}
		if !s.process(ctx, memberID, entries) {
			break
		}
	}
	n, err := s.rdb.XLen(ctx, keyspace.IntakeStream(memberID)).Result()
	if err == nil && n == 0 {
		err = forgetScript.Run(ctx, s.rdb, []string{keyspace.IntakePortals()},
			memberID, strconv.FormatFloat(score, 'f', -1, 64)).Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("check intake stream", "member_id", memberID, "error", err)
	}
}

func (s *Service) ensureGroup(ctx context.Context, memberID string) error {
	s.mu.Lock()
	ok := s.grouped[memberID]
	s.mu.Unlock()
	if ok {
		return nil
	}
	err := s.rdb.XGroupCreateMkStream(ctx, keyspace.IntakeStream(memberID), group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	s.mu.Lock()
	s.grouped[memberID] = true
	s.mu.Unlock()
	return nil
}

// take returns the posts of the portal this worker should look at: up to half a
// batch of those other workers left idle (retries, crashed workers), scanned from
// where the last look stopped so that posts waiting for a later attempt cannot
// starve the rest, then new ones.
func (s *Service) take(ctx context.Context, memberID string) ([]redis.XMessage, error) {
	stream := keyspace.IntakeStream(memberID)
	claimed, next, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: s.cfg.Consumer,
		MinIdle: s.cfg.ClaimIdle, Start: s.cursor(memberID), Count: int64(max(1, s.cfg.Batch/2)),
	}).Result()
	if err != nil {
		return nil, s.groupLost(memberID, err)
	}
	s.setCursor(memberID, next)
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: s.cfg.Consumer, Streams: []string{stream, ">"},
		Count: int64(max(1, s.cfg.Batch-len(claimed))), Block: -1,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return claimed, nil
	}
	if err != nil {
		return nil, s.groupLost(memberID, err)
	}
	for _, st := range streams {
		claimed = append(claimed, st.Messages...)
	}
	return claimed, nil
}

// cursor is where the next scan of the portal's idle posts starts.
func (s *Service) cursor(memberID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cursors[memberID]; ok {
		return c
	}
	return "0-0"
}

func (s *Service) setCursor(memberID, next string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next == "" || next == "0-0" {
		delete(s.cursors, memberID)
		return
	}
	s.cursors[memberID] = next
}

// groupLost forgets that the portal's group exists when Redis says it does not
// (the stream was deleted), so that the next round creates it again.
func (s *Service) groupLost(memberID string, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		s.mu.Lock()
		delete(s.grouped, memberID)
		s.mu.Unlock()
	}
	return err
}

// leaseScript lets one worker at a time work on a post, and only when its next
// attempt is due.
//
// KEYS[1] the post's record. ARGV[1] now (Unix ms), ARGV[2] the lease's end.
// Returns -1 when the record is gone, 0 when the post is finished, 1 when the
// lease is taken, 2 when another worker holds it, 3 when the next attempt is later.
var leaseScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return -1
end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
	return 0
end
local now = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'lease') or '0') > now then
	return 2
end
if tonumber(redis.call('HGET', KEYS[1], 'next_at') or '0') > now then
	return 3
end
redis.call('HSET', KEYS[1], 'lease', ARGV[2])
return 1
`)

// process works on a batch of the portal's stream entries: it leases the posts that
// are due, decides their owners, creates their leads with one REST batch and settles
// each. It reports whether any entry left the stream.
func (s *Service) process(ctx context.Context, memberID string, entries []redis.XMessage) bool {
	progressed := false
	var jobs []*job
	for _, e := range entries {
		intakeID, _ := e.Values["id"].(string)
		switch s.lease(ctx, memberID, intakeID) {
		case leaseGone:
			progressed = s.ack(ctx, memberID, e.ID) == nil || progressed
		case leaseTaken:
			jobs = append(jobs, &job{entryID: e.ID, intakeID: intakeID,
				key: keyspace.IntakeRecord(memberID, intakeID)})
		}
	}
	if len(jobs) == 0 {
		return progressed
	}
	for _, j := range jobs {
		j.err = s.prepare(ctx, memberID, j)
	}
	s.findLeads(ctx, memberID, jobs)
	s.addLeads(ctx, memberID, jobs)
	for _, j := range jobs {
		if j.err == nil {
			j.err = s.complete(ctx, memberID, j)
		}
		if j.err == nil {
			progressed = s.ack(ctx, memberID, j.entryID) == nil || progressed
			continue
		}
		progressed = s.failed(ctx, memberID, j.entryID, j.intakeID, j.err) || progressed
	}
	return progressed
}

// Lease outcomes.
const (
	leaseGone  = iota // the post is finished or its record gone: acknowledge it
	leaseTaken        // this worker may work on the post now
	leaseLater        // another worker has it, or its next attempt is not due
)

// lease takes the post's lease for this worker.
func (s *Service) lease(ctx context.Context, memberID, intakeID string) int {
	now := s.now()
	n, err := leaseScript.Run(ctx, s.rdb,
		[]string{keyspace.IntakeRecord(memberID, intakeID)},
		now.UnixMilli(), now.Add(s.cfg.Lease).UnixMilli()).Int()
	switch {
	case err != nil:
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("lease intake post", "member_id", memberID, "intake_id", intakeID,
				"error", err)
		}
		return leaseLater
	case n == -1 || n == 0:
		return leaseGone
	case n == 1:
		return leaseTaken
	}
	return leaseLater
}

// ack takes a settled entry off the stream.
func (s *Service) ack(ctx context.Context, memberID, entryID string) error {
	stream := keyspace.IntakeStream(memberID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, stream, group, entryID)
		p.XDel(ctx, stream, entryID)
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("acknowledge intake post", "member_id", memberID, "error", err)
	}
	return err
}

// backoff is the wait before attempt n+1: doubling from BackoffBase up to
// BackoffMax.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.BackoffBase
	for i := 1; i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.BackoffMax)
}

// DeadLetter is a post whose lead could not be created, as the settings page lists
// it: where it came from, why and when it failed, and nothing about the person.
type DeadLetter struct {
	IntakeID   string
	SourceID   string
	SourceName string
	// Problem says why the lead was not created, as the post's status does.
	Problem string
	// At is when the post became a dead letter (when it was accepted, for posts
	// that died before this was recorded).
	At time.Time
}

// deadFields are the fields of a post's record that DeadLetters reads; the lead
// itself stays where it is.
var deadFields = []string{"source", "source_name", "problem", "failed_at", "accepted_at"}

// DeadLetters returns the portal's newest dead posts, at most limit of them (all
// when limit is not positive), and how many there are in all.
func (s *Service) DeadLetters(ctx context.Context, memberID string,
	limit int) ([]DeadLetter, int, error) {
	key, stop := keyspace.IntakeDead(memberID), int64(limit)-1
	if limit <= 0 {
		stop = -1
	}
	var total *redis.IntCmd
	var ids *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		total = p.LLen(ctx, key)
		ids = p.LRange(ctx, key, 0, stop)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list intake dead letters of portal %s: %w", memberID, err)
	}
	records := make([]*redis.SliceCmd, len(ids.Val()))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids.Val() {
			records[i] = p.HMGet(ctx, keyspace.IntakeRecord(memberID, id), deadFields...)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read intake dead letters of portal %s: %w", memberID, err)
	}
	out := make([]DeadLetter, 0, len(records))
	for i, rec := range records {
		if d, ok := deadLetter(ids.Val()[i], rec.Val()); ok {
			out = append(out, d)
		}
	}
	return out, int(total.Val()), nil
}

// deadLetter reads the deadFields of a post's record; it reports false for a
// record that is gone.
func deadLetter(intakeID string, vals []any) (DeadLetter, bool) {
	str := make([]string, len(vals))
	for i, v := range vals {
		str[i], _ = v.(string)
	}
	if str[0] == "" {
		return DeadLetter{}, false
	}
	at, err := strconv.ParseInt(str[3], 10, 64)
	if err != nil {
		at, _ = strconv.ParseInt(str[4], 10, 64)
	}
	return DeadLetter{IntakeID: intakeID, SourceID: str[0], SourceName: str[1],
		Problem: str[2], At: time.UnixMilli(at).UTC()}, true
}

// retryScript puts a dead post back on the stream.
//
// KEYS[1] the dead-letter list, KEYS[2] the post's record, KEYS[3] the stream.
// ARGV[1] the intake ID. Returns 0 when the post is not a dead letter.
var retryScript = redis.NewScript(`
if redis.call('LREM', KEYS[1], 0, ARGV[1]) == 0 then
	return 0
end
redis.call('HSET', KEYS[2], 'state', 'pending', 'attempts', 0, 'next_at', 0, 'lease', 0)
redis.call('HDEL', KEYS[2], 'problem', 'failed_at')
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
return 1
`)

// Retry sends the dead post intakeID of the portal to the workers again. It
// returns ErrUnknownPost when the portal has no such dead letter.
func (s *Service) Retry(ctx context.Context, memberID, intakeID string) error {
	keys := []string{keyspace.IntakeDead(memberID), keyspace.IntakeRecord(memberID, intakeID),
		keyspace.IntakeStream(memberID)}
	n, err := retryScript.Run(ctx, s.rdb, keys, intakeID).Int()
	if err != nil {
		return fmt.Errorf("retry intake post %s: %w", intakeID, err)
	}
	if n == 0 {
		return ErrUnknownPost
	}
	if err := s.markReady(ctx, memberID); err != nil {
		return err
	}
	s.nudge()
	return nil
}

// RetryAll sends every dead post of the portal to the workers again and returns
// how many it sent.
func (s *Service) RetryAll(ctx context.Context, memberID string) (int, error) {
	ids, err := s.rdb.LRange(ctx, keyspace.IntakeDead(memberID), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("list intake dead letters of portal %s: %w", memberID, err)
	}
	n := 0
	for _, id := range ids {
		err := s.Retry(ctx, memberID, id)
		if errors.Is(err, ErrUnknownPost) {
			continue // retried meanwhile
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
