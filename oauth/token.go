package oauth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// Tokens is an OAuth pair of one portal user.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	Expiry       time.Time // zero when unknown
	UserID       int64     // the user the pair belongs to, 0 when unknown
}

// Token fields in Redis.
const (
	fAccessToken  = "access_token"
	fRefreshToken = "refresh_token"
	fExpires      = "expires"
	fUserID       = "user_id"
	fRefreshedAt  = "refreshed_at"
)

func (t Tokens) fields(now time.Time) map[string]any {
	m := map[string]any{
		fAccessToken:  t.AccessToken,
		fRefreshToken: t.RefreshToken,
		fRefreshedAt:  now.Unix(),
	}
	if !t.Expiry.IsZero() {
		m[fExpires] = t.Expiry.Unix()
	}
	if t.UserID != 0 {
		m[fUserID] = t.UserID
	}
	return m
}

// state is what a refresh decision needs, read in one round trip.
type state struct {
	status         string
	clientEndpoint string
	serverEndpoint string
	lastError      string
	tokens         Tokens
}

func (st state) credentials() bitrix.Credentials {
	return bitrix.Credentials{Endpoint: st.clientEndpoint, AccessToken: st.tokens.AccessToken}
}

// loadState reads the portal's status, endpoints and tokens. Both keys share the
// portal's hash tag, so the pipeline is one round trip on a cluster too.
func (s *Store) loadState(ctx context.Context, memberID string) (state, error) {
	var portal, token *redis.SliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		portal = p.HMGet(ctx, keyspace.Portal(memberID),
			fStatus, fClientEndpoint, fServerEndpoint, fLastError)
		token = p.HMGet(ctx, keyspace.Token(memberID),
			fAccessToken, fRefreshToken, fExpires, fUserID)
		return nil
	})
	if err != nil {
		return state{}, fmt.Errorf("read tokens of portal %s: %w", memberID, err)
	}
	pv, tv := strs(portal.Val()), strs(token.Val())
	expires, _ := strconv.ParseInt(tv[2], 10, 64)
	userID, _ := strconv.ParseInt(tv[3], 10, 64)
	st := state{
		status:         pv[0],
		clientEndpoint: pv[1],
		serverEndpoint: pv[2],
		lastError:      pv[3],
		tokens:         Tokens{AccessToken: tv[0], RefreshToken: tv[1], UserID: userID},
	}
	if expires > 0 {
		st.tokens.Expiry = time.Unix(expires, 0)
	}
	return st, nil
}

// usable returns an error unless the state holds tokens LeadRouter may use.
func (st state) usable(memberID string) error {
	switch st.status {
	case "":
		return fmt.Errorf("portal %s: %w", memberID, ErrUnknownPortal)
	case StatusDeleted:
		return fmt.Errorf("portal %s is uninstalled: %w", memberID, ErrInactive)
	case StatusBlocked:
		return fmt.Errorf("portal %s is blocked (%s): %w", memberID, st.lastError, ErrInactive)
	}
	if st.tokens.AccessToken == "" || st.clientEndpoint == "" {
		return fmt.Errorf("portal %s has no tokens: %w", memberID, ErrInactive)
	}
	return nil
}

// strs turns an HMGET reply into strings, "" for missing fields.
func strs(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = s
		}
	}
	return out
}

// Tokens returns the portal's stored install pair.
func (s *Store) Tokens(ctx context.Context, memberID string) (Tokens, error) {
	if err := CheckMemberID(memberID); err != nil {
		return Tokens{}, err
	}
	st, err := s.loadState(ctx, memberID)
	if err != nil {
		return Tokens{}, err
	}
	return st.tokens, nil
}
