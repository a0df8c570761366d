package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// portalAuth is the bitrix.Auth of one portal's install tokens.
type portalAuth struct {
	store    *Store
	memberID string
}

// Auth returns the bitrix.Auth of the portal memberID: its stored install tokens,
// refreshed on demand.
func (s *Store) Auth(memberID string) bitrix.Auth {
	return &portalAuth{store: s, memberID: memberID}
}

// Credentials returns the stored endpoint and access token. It fails with
// ErrInactive for a deleted or blocked portal, so that its work stops.
func (a *portalAuth) Credentials(ctx context.Context) (bitrix.Credentials, error) {
	if err := CheckMemberID(a.memberID); err != nil {
		return bitrix.Credentials{}, err
	}
	st, err := a.store.loadState(ctx, a.memberID)
	if err != nil {
		return bitrix.Credentials{}, err
	}
	if err := st.usable(a.memberID); err != nil {
		return bitrix.Credentials{}, err
	}
	return st.credentials(), nil
}

// Refresh returns credentials newer than stale, refreshing at most once per
// portal across all instances.
func (a *portalAuth) Refresh(ctx context.Context, stale bitrix.Credentials) (
	bitrix.Credentials, error) {
	if err := CheckMemberID(a.memberID); err != nil {
		return bitrix.Credentials{}, err
	}
	return a.store.refresh(ctx, a.memberID, stale)
}

// Moved stores the portal's new client endpoint and domain after a rename.
func (a *portalAuth) Moved(ctx context.Context, endpoint string) error {
	return a.store.Moved(ctx, a.memberID, endpoint)
}

// Moved records that the portal memberID now answers at endpoint (a REST base
// such as "https://new-name.bitrix24.com/rest/"), updating its domain too.
func (s *Store) Moved(ctx context.Context, memberID, endpoint string) error {
	if err := CheckMemberID(memberID); err != nil {
		return err
	}
	if err := checkEndpoint(endpoint); err != nil {
		return fmt.Errorf("move portal %s: %w", memberID, err)
	}
	key := keyspace.Portal(memberID)
	n, err := s.rdb.Exists(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("move portal %s: %w", memberID, err)
	}
	if n == 0 {
		return fmt.Errorf("move portal %s: %w", memberID, ErrUnknownPortal)
	}
	err = s.rdb.HSet(ctx, key, fClientEndpoint, endpoint, fDomain, domainOf(endpoint),
		fUpdatedAt, s.now().Unix()).Err()
	if err != nil {
		return fmt.Errorf("move portal %s: %w", memberID, err)
	}
	s.log.Info("portal moved", "member_id", memberID, "domain", domainOf(endpoint))
	return nil
}

// errBadEndpoint is wrapped by checkEndpoint's errors.
var errBadEndpoint = errors.New("bad endpoint")

// checkEndpoint accepts an absolute http(s) URL with a host and a path ending in
// "/rest/", the shape of client_endpoint and server_endpoint.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadEndpoint, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: %q is not an http(s) address", errBadEndpoint, endpoint)
	}
	if !strings.HasSuffix(u.Path, "/rest/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %q does not end in /rest/", errBadEndpoint, endpoint)
	}
	return nil
}

// origin returns scheme://host of u, "" when u is not an absolute http(s) URL.
func origin(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || p.Host == "" || (p.Scheme != "https" && p.Scheme != "http") {
		return ""
	}
	return strings.ToLower(p.Scheme + "://" + p.Host)
}

// OAuthServer returns the REST base of the OAuth server to use for a portal that
// named claimed as its server_endpoint: claimed itself when its origin is trusted,
// the configured server otherwise.
func (s *Store) OAuthServer(claimed string) string {
	if claimed != "" && checkEndpoint(claimed) == nil && s.trusted[origin(claimed)] {
		return origin(claimed) + "/rest/"
	}
	return s.cfg.OAuthURL + "/rest/"
}

// tokenURL returns the token endpoint of the OAuth server for serverEndpoint.
// The trailing slash matters to Bitrix24.
func (s *Store) tokenURL(serverEndpoint string) string {
	return strings.TrimSuffix(s.OAuthServer(serverEndpoint), "/rest/") + "/oauth/token/"
}
