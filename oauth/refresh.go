package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// ErrRefreshBusy is returned when another instance held a portal's refresh lock for
// longer than a refresh may take and nothing new appeared in Redis.
var ErrRefreshBusy = errors.New("token refresh still running elsewhere")

// Reasons shown on the settings page when a portal is blocked.
const (
	reasonInvalidGrant = "Bitrix24 no longer accepts LeadRouter's access to this portal. " +
		"An administrator must open LeadRouter in Bitrix24 or reinstall it."
	reasonPayment = "Bitrix24 reports that the application's paid period is over."
)

// releaseLock deletes a lock only while it still holds the caller's owner token.
//
// KEYS[1] the lock; ARGV[1] the owner token. Returns 1 when deleted, 0 otherwise.
var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// storeRotated writes a rotated pair only while the stored refresh token is still
// the one that was spent, so that a pair written meanwhile by a reinstall is kept.
//
// KEYS[1] the token hash, KEYS[2] the portal hash.
// ARGV: spent refresh token, access token, refresh token, expires (Unix), user id
// ("" to keep), now (Unix), client endpoint ("" to keep), domain.
// Returns 1 when written, 0 when the stored refresh token had changed.
var storeRotated = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'refresh_token') ~= ARGV[1] then
	return 0
end
redis.call('HSET', KEYS[1], 'access_token', ARGV[2], 'refresh_token', ARGV[3],
	'expires', ARGV[4], 'refreshed_at', ARGV[6])
if ARGV[5] ~= '' then
	redis.call('HSET', KEYS[1], 'user_id', ARGV[5])
end
if ARGV[7] ~= '' then
	redis.call('HSET', KEYS[2], 'client_endpoint', ARGV[7], 'domain', ARGV[8])
end
redis.call('HSET', KEYS[2], 'updated_at', ARGV[6])
return 1`)

// flight lets concurrent callers in one process share one refresh per portal and
// stale token.
type flight struct {
	mu    sync.Mutex // guards calls
	calls map[string]*flightCall
}

type flightCall struct {
	done  chan struct{}
	creds bitrix.Credentials
	err   error
}

// do runs fn once for all callers that arrive with the same key while it runs.
// fn runs detached from the caller's context so that one caller giving up does
// not fail the others; each caller still stops waiting when its own ctx ends.
func (f *flight) do(ctx context.Context, key string, fn func() (bitrix.Credentials, error)) (
	bitrix.Credentials, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	c, ok := f.calls[key]
	if !ok {
		c = &flightCall{done: make(chan struct{})}
		f.calls[key] = c
		go func() {
			c.creds, c.err = fn()
			f.mu.Lock()
			delete(f.calls, key)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.creds, c.err
	case <-ctx.Done():
		return bitrix.Credentials{}, ctx.Err()
	}
}

// refresh returns credentials newer than stale: those another caller or instance
// stored meanwhile, or a pair it refreshes itself.
func (s *Store) refresh(ctx context.Context, memberID string, stale bitrix.Credentials) (
	bitrix.Credentials, error) {
	key := memberID + "\x00" + stale.AccessToken
	return s.flight.do(ctx, key, func() (bitrix.Credentials, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*s.cfg.LockTTL)
		defer cancel()
		return s.refreshOnce(ctx, memberID, func(st state) bool {
			return st.tokens.AccessToken == stale.AccessToken
		})
	})
}

// refreshOnce refreshes the portal's pair under the cross-instance lock while
// needed(state) holds; when it stops holding (another instance refreshed), it
// returns what is stored.
func (s *Store) refreshOnce(ctx context.Context, memberID string, needed func(state) bool) (
	bitrix.Credentials, error) {
	deadline := time.Now().Add(s.cfg.LockTTL + s.cfg.LockTTL/2)
	for {
		st, err := s.loadState(ctx, memberID)
		if err != nil {
			return bitrix.Credentials{}, err
		}
		if err := st.usable(memberID); err != nil {
			return bitrix.Credentials{}, err
		}
		if !needed(st) {
			return st.credentials(), nil
		}
		owner, ok, err := s.lock(ctx, memberID)
		if err != nil {
			return bitrix.Credentials{}, err
		}
		if ok {
			return s.refreshLocked(ctx, memberID, owner, needed)
		}
		if time.Now().After(deadline) {
			return bitrix.Credentials{}, fmt.Errorf("refresh tokens of portal %s: %w",
				memberID, ErrRefreshBusy)
		}
		select {
		case <-ctx.Done():
			return bitrix.Credentials{}, ctx.Err()
		case <-time.After(s.cfg.LockPoll):
		}
	}
}

// refreshLocked holds the lock: it reads again, refreshes if still needed and
// releases the lock.
func (s *Store) refreshLocked(ctx context.Context, memberID, owner string,
	needed func(state) bool) (bitrix.Credentials, error) {
	defer s.unlock(memberID, owner)
	st, err := s.loadState(ctx, memberID)
	if err != nil {
		return bitrix.Credentials{}, err
	}
	if err := st.usable(memberID); err != nil {
		return bitrix.Credentials{}, err
	}
	if !needed(st) {
		return st.credentials(), nil
	}
	return s.rotate(ctx, memberID, st)
}

// lock tries to take the portal's refresh lock; it returns the owner token.
func (s *Store) lock(ctx context.Context, memberID string) (string, bool, error) {
	var b [16]byte
	rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	ok, err := s.rdb.SetNX(ctx, keyspace.RefreshLock(memberID), owner, s.cfg.LockTTL).Result()
	if err != nil {
		return "", false, fmt.Errorf("take refresh lock of portal %s: %w", memberID, err)
	}
	return owner, ok, nil
}

func (s *Store) unlock(memberID, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := releaseLock.Run(ctx, s.rdb, []string{keyspace.RefreshLock(memberID)}, owner).Err()
	if err != nil {
		s.log.Warn("release refresh lock failed", "member_id", memberID, "error", err)
	}
}

// rotate spends the stored refresh token at the portal's OAuth server and stores
// the new pair before returning it.
func (s *Store) rotate(ctx context.Context, memberID string, st state) (bitrix.Credentials, error) {
	if st.tokens.RefreshToken == "" {
		return bitrix.Credentials{}, fmt.Errorf("portal %s has no refresh token: %w",
			memberID, ErrInactive)
	}
	reqCtx, cancel := context.WithTimeout(ctx, s.cfg.LockTTL*2/3)
	defer cancel()
	tok, err := s.exchange(reqCtx, st.serverEndpoint, st.tokens.RefreshToken)
	if err != nil {
		return s.refreshFailed(ctx, memberID, st, err)
	}
	if m, _ := tok.Extra("member_id").(string); m != "" && m != memberID {
		refreshes.WithLabelValues("wrong_portal").Inc()
		return bitrix.Credentials{}, fmt.Errorf(
			"refresh tokens of portal %s: OAuth server answered for portal %s", memberID, m)
	}
	pair := tokensFrom(tok, st.tokens.UserID)
	endpoint, _ := tok.Extra("client_endpoint").(string)
	if checkEndpoint(endpoint) != nil {
		endpoint = ""
	}
	written, err := s.storeRotated(ctx, memberID, st.tokens.RefreshToken, pair, endpoint)
	if err != nil {
		refreshes.WithLabelValues("store_failed").Inc()
		s.log.Error("rotated tokens not stored", "member_id", memberID, "error", err)
		return bitrix.Credentials{}, err
	}
	if !written {
		// A reinstall stored a different pair while we refreshed; it wins.
		st, err := s.loadState(ctx, memberID)
		if err != nil {
			return bitrix.Credentials{}, err
		}
		return st.credentials(), st.usable(memberID)
	}
	refreshes.WithLabelValues("ok").Inc()
	s.log.Info("portal tokens refreshed", "member_id", memberID)
	if endpoint == "" {
		endpoint = st.clientEndpoint
	}
	return bitrix.Credentials{Endpoint: endpoint, AccessToken: pair.AccessToken}, nil
}

// exchange makes the refresh request through x/oauth2.
func (s *Store) exchange(ctx context.Context, serverEndpoint, refreshToken string) (
	*oauth2.Token, error) {
	conf := oauth2.Config{
		ClientID:     s.cfg.ClientID,
		ClientSecret: s.cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			TokenURL:  s.tokenURL(serverEndpoint),
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.http)
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// tokensFrom converts an x/oauth2 token. Bitrix24 sends the absolute expiry as
// "expires"; it is used when expires_in gave none.
func tokensFrom(tok *oauth2.Token, userID int64) Tokens {
	t := Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry,
		UserID: userID}
	if t.Expiry.IsZero() {
		if exp := number(tok.Extra("expires")); exp > 0 {
			t.Expiry = time.Unix(exp, 0)
		}
	}
	if uid := number(tok.Extra("user_id")); uid > 0 {
		t.UserID = uid
	}
	return t
}

// number reads a JSON number or numeric string.
func number(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

func (s *Store) storeRotated(ctx context.Context, memberID, spent string, t Tokens,
	endpoint string) (bool, error) {
	var expires int64
	if !t.Expiry.IsZero() {
		expires = t.Expiry.Unix()
	}
	userID := ""
	if t.UserID != 0 {
		userID = strconv.FormatInt(t.UserID, 10)
	}
	now := s.now()
	keys := []string{keyspace.Token(memberID), keyspace.Portal(memberID)}
	args := []any{spent, t.AccessToken, t.RefreshToken, expires, userID, now.Unix(),
		endpoint, domainOf(endpoint)}
	var n int64
	var err error
	for attempt := range 3 {
		n, err = storeRotated.Run(ctx, s.rdb, keys, args...).Int64()
		if err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	if err != nil {
		return false, fmt.Errorf("store rotated tokens of portal %s: %w", memberID, err)
	}
	if n == 1 {
		z := redis.Z{Score: float64(now.Unix()), Member: memberID}
		if err := s.rdb.ZAdd(ctx, keyspace.Portals(), z).Err(); err != nil {
			s.log.Warn("keep-alive index not updated", "member_id", memberID, "error", err)
		}
	}
	return n == 1, nil
}

// refreshFailed handles a refused refresh. invalid_grant means the refresh token
// is spent: when Redis holds a different one now, another instance won and its
// pair is returned; otherwise the portal is blocked.
func (s *Store) refreshFailed(ctx context.Context, memberID string, st state, err error) (
	bitrix.Credentials, error) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		refreshes.WithLabelValues("error").Inc()
		return bitrix.Credentials{}, fmt.Errorf("refresh tokens of portal %s: %w", memberID, err)
	}
	refreshes.WithLabelValues(re.ErrorCode).Inc()
	var reason string
	switch re.ErrorCode {
	case "invalid_grant":
		reason = reasonInvalidGrant
	case "PAYMENT_REQUIRED":
		reason = reasonPayment
	default:
		return bitrix.Credentials{}, fmt.Errorf("refresh tokens of portal %s: OAuth server answered %q",
			memberID, re.ErrorCode)
	}
	now, lerr := s.loadState(ctx, memberID)
	won := lerr == nil && now.tokens.RefreshToken != st.tokens.RefreshToken
	if won && now.usable(memberID) == nil {
		return now.credentials(), nil
	}
	if berr := s.Block(ctx, memberID, reason); berr != nil {
		s.log.Error("portal not blocked", "member_id", memberID, "error", berr)
	}
	s.log.Warn("portal blocked: refresh refused", "member_id", memberID, "code", re.ErrorCode)
	return bitrix.Credentials{}, fmt.Errorf("refresh tokens of portal %s: %s: %w",
		memberID, re.ErrorCode, ErrInactive)
}

// KeepAlive refreshes the pair of every live portal whose refresh token was last
// used before cutoff, at most limit portals per call, and returns how many it
// refreshed. A portal that another instance refreshed meanwhile is skipped.
func (s *Store) KeepAlive(ctx context.Context, cutoff time.Time, limit int64) (int, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, keyspace.Portals(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(cutoff.Unix(), 10), Count: limit,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("list portals to keep alive: %w", err)
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		refreshed, err := s.keepAliveOne(ctx, id, cutoff)
		if err != nil {
			s.log.Warn("keep-alive refresh failed", "member_id", id, "error", err)
			continue
		}
		if refreshed {
			n++
		}
	}
	return n, nil
}

// keepAliveOne refreshes one portal if its index score is still before cutoff
// once the lock is held; it reports whether it refreshed.
func (s *Store) keepAliveOne(ctx context.Context, memberID string, cutoff time.Time) (bool, error) {
	st, err := s.loadState(ctx, memberID)
	if err != nil {
		return false, err
	}
	if st.usable(memberID) != nil {
		// Not live: it has no business in the index.
		return false, s.rdb.ZRem(ctx, keyspace.Portals(), memberID).Err()
	}
	stillOld := false
	_, err = s.refreshOnce(ctx, memberID, func(state) bool {
		score, err := s.rdb.ZScore(ctx, keyspace.Portals(), memberID).Result()
		stillOld = err == nil && int64(score) <= cutoff.Unix()
		return stillOld
	})
	return err == nil && stillOld, err
}
