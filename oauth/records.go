package oauth

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

// setIfExists sets hash fields only on an existing hash, so that a late writer
// does not bring back a record that an uninstall with CLEAN removed.
//
// KEYS[1] the hash; ARGV field, value, field, value... Returns 1 when set.
var setIfExists = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
	return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`)

// blockPortal moves a new or active portal to blocked.
//
// KEYS[1] the portal hash; ARGV[1] reason, ARGV[2] now (Unix).
// Returns 1 when blocked, 0 when the portal was not new or active.
var blockPortal = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'new' and st ~= 'active' then
	return 0
end
redis.call('HSET', KEYS[1], 'status', 'blocked', 'last_error', ARGV[1], 'updated_at', ARGV[2])
return 1`)

// Install is what a verified install page tells about a portal.
type Install struct {
	MemberID         string
	Domain           string
	ClientEndpoint   string
	ServerEndpoint   string
	Scope            string
	Version          string
	AppStatus        string
	Lang             string
	ApplicationToken string // posted with the page; often absent
	InstalledBy      int64
	Tokens           Tokens // the installing administrator's pair
	// Installed reports whether the OAuth server already counts the installation
	// as finished (installFinish ran, or this is a page reopened later).
	Installed bool
}

// SaveInstall records a verified install page. An active portal that the OAuth
// server counts as installed keeps its status, application token and tokens (an
// ONAPPINSTALL got here first, or the page was reopened); anything else is a new
// installation and replaces the record, as new, or as active when the OAuth
// server counts it installed and the page carried its application token.
func (s *Store) SaveInstall(ctx context.Context, in Install) (*Portal, error) {
	if err := CheckMemberID(in.MemberID); err != nil {
		return nil, err
	}
	var saved *Portal
	var tokensWritten bool
	err := s.watchPortal(ctx, in.MemberID, func(tx *redis.Tx, cur *Portal, hasRefresh bool) error {
		now := s.now()
		var p *Portal
		if cur != nil && cur.Status == StatusActive && in.Installed {
			p = cur
			mergeInstall(p, in)
			tokensWritten = !hasRefresh
		} else {
			p = &Portal{MemberID: in.MemberID, Status: StatusNew, CreatedAt: now}
			mergeInstall(p, in)
			p.ApplicationToken = in.ApplicationToken
			p.InstalledBy = in.InstalledBy
			if in.Installed && in.ApplicationToken != "" {
				p.Status, p.ActivatedAt = StatusActive, now
			}
			tokensWritten = true
		}
		p.UpdatedAt = now
		saved = p
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Del(ctx, keyspace.Portal(in.MemberID))
			pipe.HSet(ctx, keyspace.Portal(in.MemberID), p.fields())
			if tokensWritten {
				pipe.Del(ctx, keyspace.Token(in.MemberID))
				pipe.HSet(ctx, keyspace.Token(in.MemberID), in.Tokens.fields(now))
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("save install of portal %s: %w", in.MemberID, err)
	}
	s.index(ctx, saved, tokensWritten)
	return saved, nil
}

// mergeInstall copies what the OAuth server and the page said into p.
func mergeInstall(p *Portal, in Install) {
	p.Domain = in.Domain
	p.ClientEndpoint = in.ClientEndpoint
	p.ServerEndpoint = in.ServerEndpoint
	p.Scope = in.Scope
	p.AppStatus = in.AppStatus
	if in.Version != "" {
		p.Version = in.Version
	}
	if in.Lang != "" {
		p.Lang = in.Lang
	}
	if p.ApplicationToken == "" {
		p.ApplicationToken = in.ApplicationToken
	}
	if p.InstalledBy == 0 {
		p.InstalledBy = in.InstalledBy
	}
}

// Activation is what a verified ONAPPINSTALL or ONAPPUPDATE tells about a portal.
// Empty fields leave the stored values alone.
type Activation struct {
	MemberID         string
	ApplicationToken string
	Version          string
	Lang             string
	Scope            string
	AppStatus        string
	Domain           string
	ClientEndpoint   string
	ServerEndpoint   string
	UserID           int64
	Tokens           Tokens // the event's pair; used only when the stored one cannot serve
}

// Activate marks the portal active with the event's application token. The
// event's tokens replace the stored pair only when there is none, when the portal
// is blocked or deleted, or when the application token changed (a reinstall): a
// duplicate event never brings back a pair that was already spent. It returns the
// record and the status it had before ("" when unknown).
func (s *Store) Activate(ctx context.Context, a Activation) (*Portal, string, error) {
	if err := CheckMemberID(a.MemberID); err != nil {
		return nil, "", err
	}
	var saved *Portal
	var before string
	var tokensWritten bool
	err := s.watchPortal(ctx, a.MemberID, func(tx *redis.Tx, cur *Portal, hasRefresh bool) error {
		now := s.now()
		p := cur
		before = ""
		if cur == nil || cur.Status == StatusDeleted {
			if cur != nil {
				before = cur.Status
			}
			p = &Portal{MemberID: a.MemberID, CreatedAt: now, InstalledBy: a.UserID}
			hasRefresh = false
		} else {
			before = cur.Status
		}
		takeTokens := a.Tokens.RefreshToken != "" && (!hasRefresh || p.Status == StatusBlocked ||
			p.Status == StatusActive && !SameToken(p.ApplicationToken, a.ApplicationToken))
		if p.Status == StatusBlocked && !takeTokens {
			return fmt.Errorf("portal %s stays blocked: the event brought no tokens: %w",
				a.MemberID, ErrInactive)
		}
		tokenLearnt := p.ApplicationToken == "" // the hint about a missing token is stale
		mergeActivation(p, a)
		if p.Status != StatusActive {
			p.ActivatedAt, p.LastError = now, ""
		}
		if tokenLearnt {
			p.LastError = ""
		}
		p.Status, p.UpdatedAt = StatusActive, now
		saved, tokensWritten = p, takeTokens
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Del(ctx, keyspace.Portal(a.MemberID))
			pipe.HSet(ctx, keyspace.Portal(a.MemberID), p.fields())
			if takeTokens {
				pipe.Del(ctx, keyspace.Token(a.MemberID))
				pipe.HSet(ctx, keyspace.Token(a.MemberID), a.Tokens.fields(now))
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("activate portal %s: %w", a.MemberID, err)
	}
	s.index(ctx, saved, tokensWritten)
	return saved, before, nil
}

func mergeActivation(p *Portal, a Activation) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	p.ApplicationToken = a.ApplicationToken
	set(&p.Version, a.Version)
	set(&p.Lang, a.Lang)
	set(&p.Scope, a.Scope)
	set(&p.AppStatus, a.AppStatus)
	set(&p.Domain, a.Domain)
	set(&p.ClientEndpoint, a.ClientEndpoint)
	set(&p.ServerEndpoint, a.ServerEndpoint)
}

// watchPortal runs fn in an optimistic transaction on the portal's record,
// retrying when another writer changed it meanwhile.
func (s *Store) watchPortal(ctx context.Context, memberID string,
	fn func(tx *redis.Tx, cur *Portal, hasRefresh bool) error) error {
	key, tokenKey := keyspace.Portal(memberID), keyspace.Token(memberID)
	for range 10 {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			rt, err := tx.HGet(ctx, tokenKey, fRefreshToken).Result()
			if err != nil && !isNil(err) {
				return err
			}
			return fn(tx, portalFrom(memberID, h), rt != "")
		}, key, tokenKey)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("portal %s changed under every attempt", memberID)
}

// index brings the cross-portal sets in line with p. They carry no hash tag, so
// they are written after the record; a crash in between leaves an index one step
// behind, which the next write or the sweep corrects.
func (s *Store) index(ctx context.Context, p *Portal, tokensWritten bool) {
	id := p.MemberID
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		switch p.Status {
		case StatusActive:
			pipe.SAdd(ctx, keyspace.ActivePortals(), id)
			pipe.ZRem(ctx, keyspace.PendingInstalls(), id)
		case StatusNew:
			pipe.SRem(ctx, keyspace.ActivePortals(), id)
			pipe.ZAddNX(ctx, keyspace.PendingInstalls(), redis.Z{Score: float64(s.now().Unix()), Member: id})
		default:
			pipe.SRem(ctx, keyspace.ActivePortals(), id)
			pipe.ZRem(ctx, keyspace.PendingInstalls(), id)
			pipe.ZRem(ctx, keyspace.Portals(), id)
		}
		if tokensWritten && p.Live() {
			pipe.ZAdd(ctx, keyspace.Portals(), redis.Z{Score: float64(s.now().Unix()), Member: id})
		}
		return nil
	})
	if err != nil {
		s.log.Warn("portal indexes not updated", "member_id", id, "error", err)
	}
}

// MarkBound records that the portal's events and placements are bound for version.
func (s *Store) MarkBound(ctx context.Context, memberID, version string) error {
	return s.setFields(ctx, memberID, fBoundVersion, version, fBoundAt, s.now().Unix())
}

// SetLastError records a sentence for the settings page; "" clears it.
func (s *Store) SetLastError(ctx context.Context, memberID, message string) error {
	return s.setFields(ctx, memberID, fLastError, message)
}

func (s *Store) setFields(ctx context.Context, memberID string, fv ...any) error {
	if err := CheckMemberID(memberID); err != nil {
		return err
	}
	fv = append(fv, fUpdatedAt, s.now().Unix())
	n, err := setIfExists.Run(ctx, s.rdb, []string{keyspace.Portal(memberID)}, fv...).Int()
	if err != nil {
		return fmt.Errorf("update portal %s: %w", memberID, err)
	}
	if n == 0 {
		return fmt.Errorf("update portal %s: %w", memberID, ErrUnknownPortal)
	}
	return nil
}

// Block marks a new or active portal blocked with a reason for the settings page.
func (s *Store) Block(ctx context.Context, memberID, reason string) error {
	keys := []string{keyspace.Portal(memberID)}
	n, err := blockPortal.Run(ctx, s.rdb, keys, reason, s.now().Unix()).Int()
	if err != nil {
		return fmt.Errorf("block portal %s: %w", memberID, err)
	}
	if n == 1 {
		s.index(ctx, &Portal{MemberID: memberID, Status: StatusBlocked}, false)
	}
	return nil
}

// Uninstall marks the portal deleted and drops its tokens. Its other data stays
// until Forget.
func (s *Store) Uninstall(ctx context.Context, memberID string) error {
	if err := CheckMemberID(memberID); err != nil {
		return err
	}
	now := s.now().Unix()
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, keyspace.Portal(memberID), fStatus, StatusDeleted, fUninstalledAt, now,
			fUpdatedAt, now)
		pipe.Del(ctx, keyspace.Token(memberID), keyspace.RefreshLock(memberID))
		return nil
	})
	if err != nil {
		return fmt.Errorf("uninstall portal %s: %w", memberID, err)
	}
	s.index(ctx, &Portal{MemberID: memberID, Status: StatusDeleted}, false)
	return nil
}

// Forget deletes every key of the portal (all keys under its hash tag, on every
// master of a cluster) and leaves a tombstone record saying it was uninstalled
// with its data removed. It returns how many keys it deleted.
func (s *Store) Forget(ctx context.Context, memberID string) (int, error) {
	if err := CheckMemberID(memberID); err != nil {
		return 0, err
	}
	n, err := s.deleteTagged(ctx, memberID)
	if err != nil {
		return n, fmt.Errorf("forget portal %s: %w", memberID, err)
	}
	now := s.now().Unix()
	err = s.rdb.HSet(ctx, keyspace.Portal(memberID), fStatus, StatusDeleted,
		fUninstalledAt, now, fUpdatedAt, now, fClean, 1).Err()
	if err != nil {
		return n, fmt.Errorf("forget portal %s: %w", memberID, err)
	}
	s.index(ctx, &Portal{MemberID: memberID, Status: StatusDeleted}, false)
	return n, nil
}

// deleteTagged scans for the portal's keys and deletes them. On a cluster the
// keys of one hash tag live on one master, but which one is only known to the
// cluster, so every master is scanned.
func (s *Store) deleteTagged(ctx context.Context, memberID string) (int, error) {
	pattern := keyspace.PortalPattern(memberID)
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex // guards total
		var total int
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			n, err := scanDelete(ctx, node, pattern)
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
		return total, err
	}
	return scanDelete(ctx, s.rdb, pattern)
}

func scanDelete(ctx context.Context, c redis.Cmdable, pattern string) (int, error) {
	var cursor uint64
	total := 0
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return total, err
		}
		if len(keys) > 0 {
			n, err := c.Del(ctx, keys...).Result()
			if err != nil {
				return total, err
			}
			total += int(n)
		}
		if next == 0 {
			return total, nil
		}
		cursor = next
	}
}

// PendingInstalls returns up to limit portals still new whose install page ran
// before the given time, oldest first, with that time.
func (s *Store) PendingInstalls(ctx context.Context, before time.Time, limit int64) (
	[]redis.Z, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, keyspace.PendingInstalls(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.Unix(), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending installs: %w", err)
	}
	return zs, nil
}

// DropPending removes a portal from the pending installs.
func (s *Store) DropPending(ctx context.Context, memberID string) error {
	return s.rdb.ZRem(ctx, keyspace.PendingInstalls(), memberID).Err()
}
