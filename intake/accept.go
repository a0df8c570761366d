package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// State is where an accepted post stands.
type State string

// States of an accepted post.
const (
	Pending State = "pending" // stored; the lead is not created yet
	Created State = "created" // the lead exists in the portal
	Failed  State = "failed"  // the portal refused the lead for good; kept as a dead letter
)

// Receipt is what a post, a repeated post or a status request learns about an
// accepted post.
type Receipt struct {
	IntakeID string `json:"intake_id"`
	State    State  `json:"status"`
	LeadID   int64  `json:"lead_id,omitempty"`
	// Owner is the lead's responsible person, once it is created.
	Owner int64 `json:"responsible,omitempty"`
	// Duplicate reports whether the post repeated an earlier one.
	Duplicate bool `json:"duplicate,omitempty"`
	// Problem says, for a failed post, why the portal refused the lead.
	Problem string `json:"problem,omitempty"`
}

// ErrRateLimited is returned by Allow when the source has used its posts for the
// current minute.
var ErrRateLimited = errors.New("intake source rate limit reached")

// ErrPortalGone is returned by Accept when the source's portal has uninstalled
// LeadRouter: the post is not stored.
var ErrPortalGone = errors.New("intake portal uninstalled")

// ErrUnknownPost is returned by Status for an intake ID the source never accepted
// (or one whose record has expired).
var ErrUnknownPost = errors.New("unknown intake post")

// Allow counts one post of src against its per-minute limit. It returns
// ErrRateLimited, and how long until the next minute, when the limit is reached.
func (s *Service) Allow(ctx context.Context, src *Source) (time.Duration, error) {
	now := s.now()
	window := now.Unix() / 60
	key := keyspace.IntakeRate(src.MemberID, src.ID, window)
	var incr *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.Expire(ctx, key, 2*time.Minute)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count intake post of source %s: %w", src.ID, err)
	}
	if incr.Val() > int64(src.Options.RatePerMinute) {
		next := time.Unix((window+1)*60, 0)
		return next.Sub(now), ErrRateLimited
	}
	return 0, nil
}

// acceptScript stores a post once per idempotency key, while the portal has
// LeadRouter installed. The portal's record is read in the same script, so that no
// post is stored once an uninstall has marked it deleted.
//
// KEYS[1] idempotency key, KEYS[2] the new post's record, KEYS[3] the portal's
// intake stream, KEYS[4] the portal's record (keyspace.Portal). ARGV[1] the new
// intake ID, ARGV[2] the idempotency window in milliseconds, ARGV[3..] the record's
// field/value pairs.
// Returns {1, intake ID} for a stored post, {0, earlier intake ID} for a repeat,
// {-1, ""} when the portal is uninstalled or unknown.
var acceptScript = redis.NewScript(`
local status = redis.call('HGET', KEYS[4], 'status')
if not status or status == 'deleted' then
	return {-1, ''}
end
local earlier = redis.call('GET', KEYS[1])
if earlier then
	return {0, earlier}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
return {1, ARGV[1]}
`)

// Accept stores post for src and hands it to the workers. A post that repeats an
// earlier one of the same source within the source's idempotency window — the same
// idempotency key (clientKey, or the post's own idempotency_key field), or without
// a key the same lead — is not stored again: the receipt of the earlier post comes
// back with Duplicate set. The returned receipt is Pending for a new post. A post
// naming the responsible person gets FieldErrors unless src allows it, and a post
// for a portal that uninstalled LeadRouter gets ErrPortalGone.
func (s *Service) Accept(ctx context.Context, src *Source, post *Post,
	clientKey string) (*Receipt, error) {
	if post.Lead.Responsible != 0 && !src.Options.AllowResponsible {
		return nil, FieldErrors{"responsible": "this intake URL does not let a post choose " +
			"the responsible person; ask the portal administrator to allow it"}
	}
	if clientKey == "" {
		clientKey = post.IdempotencyKey
	}
	payload, err := json.Marshal(post.Lead)
	if err != nil {
		return nil, fmt.Errorf("encode intake lead: %w", err)
	}
	idem := idempotencyKey(clientKey, payload)
	intakeID := newID(12)
	record := []any{
		"source", src.ID,
		"source_name", src.Name,
		"crm_source", src.Options.CRMSource,
		"lead", string(payload),
		"state", string(Pending),
		"accepted_at", s.now().UnixMilli(),
		"attempts", 0,
	}
	args := append([]any{intakeID, src.Options.IdempotencyWindow.Milliseconds()}, record...)
	keys := []string{
		keyspace.IntakeIdempotency(src.MemberID, src.ID, idem),
		keyspace.IntakeRecord(src.MemberID, intakeID),
		keyspace.IntakeStream(src.MemberID),
		keyspace.Portal(src.MemberID),
	}
	res, err := acceptScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("store intake post of source %s: %w", src.ID, err)
	}
	stored, _ := res[0].(int64)
	rc := &Receipt{IntakeID: intakeID, State: Pending}
	switch stored {
	case -1:
		return nil, fmt.Errorf("store intake post of source %s: %w", src.ID, ErrPortalGone)
	case 0:
		id, _ := res[1].(string)
		if rc, err = s.Status(ctx, src, id); err != nil {
			return nil, err
		}
		rc.Duplicate = true
	}
	if rc.State == Pending {
		// Also for a repeat: the first post may have failed right here.
		if err := s.markReady(ctx, src.MemberID); err != nil {
			return nil, err
		}
		s.nudge()
	}
	return rc, nil
}

// idempotencyKey is the hash a repeated post is recognised by: of the client's
// key when there is one, of the lead otherwise.
func idempotencyKey(clientKey string, payload []byte) string {
	var h [sha256.Size]byte
	if clientKey != "" {
		h = sha256.Sum256([]byte("key\x00" + clientKey))
	} else {
		h = sha256.Sum256(append([]byte("lead\x00"), payload...))
	}
	return hex.EncodeToString(h[:16])
}

// markReady tells the workers that the portal's intake stream has work. The score
// grows with every post so that a worker finding the stream empty removes the
// portal only if nothing was posted since it looked.
func (s *Service) markReady(ctx context.Context, memberID string) error {
	if err := s.rdb.ZIncrBy(ctx, keyspace.IntakePortals(), 1, memberID).Err(); err != nil {
		return fmt.Errorf("mark intake of portal %s ready: %w", memberID, err)
	}
	return nil
}

// Status returns the receipt of the post intakeID of src.
func (s *Service) Status(ctx context.Context, src *Source, intakeID string) (*Receipt, error) {
	if !plainID(intakeID) {
		return nil, ErrUnknownPost
	}
	h, err := s.rdb.HGetAll(ctx, keyspace.IntakeRecord(src.MemberID, intakeID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read intake post %s: %w", intakeID, err)
	}
	if len(h) == 0 || h["source"] != src.ID {
		return nil, ErrUnknownPost
	}
	return receipt(intakeID, h), nil
}

func receipt(intakeID string, h map[string]string) *Receipt {
	rc := &Receipt{IntakeID: intakeID, State: State(h["state"]), Problem: h["problem"]}
	rc.LeadID, _ = strconv.ParseInt(h["lead_id"], 10, 64)
	rc.Owner, _ = strconv.ParseInt(h["owner"], 10, 64)
	return rc
}

// Wait polls the post intakeID of src until it is no longer pending or d has
// passed, and returns its receipt.
func (s *Service) Wait(ctx context.Context, src *Source, intakeID string,
	d time.Duration) (*Receipt, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(s.cfg.WaitPoll)
	defer tick.Stop()
	for {
		rc, err := s.Status(ctx, src, intakeID)
		if err != nil || rc.State != Pending {
			return rc, err
		}
		select {
		case <-ctx.Done():
			return rc, nil
		case <-deadline.C:
			return rc, nil
		case <-tick.C:
		}
	}
}
