package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Portal statuses.
const (
	// StatusNew is a portal whose install page ran but whose installation is not
	// confirmed by ONAPPINSTALL (or the sweep) yet.
	StatusNew = "new"
	// StatusActive is an installed portal LeadRouter works for.
	StatusActive = "active"
	// StatusBlocked is a portal whose tokens the OAuth server refused for good; an
	// administrator must open the app or reinstall it.
	StatusBlocked = "blocked"
	// StatusDeleted is an uninstalled portal; its tokens are gone.
	StatusDeleted = "deleted"
)

var (
	// ErrUnknownPortal is returned for a member_id with no record.
	ErrUnknownPortal = errors.New("unknown portal")
	// ErrForbidden is returned when a caller's proof (application token, AUTH_ID,
	// session) does not match the portal it names.
	ErrForbidden = errors.New("forbidden")
	// ErrBadMemberID is returned for a member_id that cannot be one.
	ErrBadMemberID = errors.New("malformed member_id")
	// ErrInactive is returned when a deleted or blocked portal's tokens are asked
	// for: the portal's work stops until it is installed or opened again.
	ErrInactive = errors.New("portal is not active")
)

// Portal is one portal's record. ApplicationToken authenticates the portal's
// events and must never be shown to a browser.
type Portal struct {
	MemberID         string
	Status           string
	Domain           string // host[:port] of the portal, e.g. "acme.bitrix24.com"
	ClientEndpoint   string // the portal's REST base, "https://acme.bitrix24.com/rest/"
	ServerEndpoint   string // the OAuth server's REST base, "https://oauth.bitrix.info/rest/"
	ApplicationToken string
	Scope            string // comma-separated
	Version          string // the app version the portal runs
	AppStatus        string // the app status letter: L, F, D, T, P, S
	Lang             string // the portal's language
	InstalledBy      int64  // the user who ran the install page
	CreatedAt        time.Time
	UpdatedAt        time.Time
	ActivatedAt      time.Time
	BoundVersion     string    // the version events and placements were last bound for
	BoundAt          time.Time // zero until events and placements are bound
	LastError        string    // a sentence for the settings page, "" when all is well
}

// Origin returns the portal's web origin ("https://acme.bitrix24.com"), taken from
// the stored client endpoint, or "" when none is stored.
func (p *Portal) Origin() string {
	u, err := url.Parse(p.ClientEndpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Live reports whether LeadRouter works for the portal: new or active.
func (p *Portal) Live() bool { return p.Status == StatusNew || p.Status == StatusActive }

// Portal fields in Redis.
const (
	fStatus         = "status"
	fDomain         = "domain"
	fClientEndpoint = "client_endpoint"
	fServerEndpoint = "server_endpoint"
	fAppToken       = "application_token"
	fScope          = "scope"
	fVersion        = "version"
	fAppStatus      = "app_status"
	fLang           = "lang"
	fInstalledBy    = "installed_by"
	fCreatedAt      = "created_at"
	fUpdatedAt      = "updated_at"
	fActivatedAt    = "activated_at"
	fBoundVersion   = "bound_version"
	fBoundAt        = "bound_at"
	fLastError      = "last_error"
	fUninstalledAt  = "uninstalled_at"
	fClean          = "clean"
)

// fields returns the record as hash fields; empty and zero values are left out.
func (p *Portal) fields() map[string]any {
	m := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	putTime := func(k string, t time.Time) {
		if !t.IsZero() {
			m[k] = t.Unix()
		}
	}
	put(fStatus, p.Status)
	put(fDomain, p.Domain)
	put(fClientEndpoint, p.ClientEndpoint)
	put(fServerEndpoint, p.ServerEndpoint)
	put(fAppToken, p.ApplicationToken)
	put(fScope, p.Scope)
	put(fVersion, p.Version)
	put(fAppStatus, p.AppStatus)
	put(fLang, p.Lang)
	if p.InstalledBy != 0 {
		m[fInstalledBy] = p.InstalledBy
	}
	putTime(fCreatedAt, p.CreatedAt)
	putTime(fUpdatedAt, p.UpdatedAt)
	putTime(fActivatedAt, p.ActivatedAt)
	put(fBoundVersion, p.BoundVersion)
	putTime(fBoundAt, p.BoundAt)
	put(fLastError, p.LastError)
	return m
}

// portalFrom decodes a hash read with HGETALL; it returns nil for an empty hash.
func portalFrom(memberID string, h map[string]string) *Portal {
	if len(h) == 0 {
		return nil
	}
	installedBy, _ := strconv.ParseInt(h[fInstalledBy], 10, 64)
	return &Portal{
		MemberID:         memberID,
		Status:           h[fStatus],
		Domain:           h[fDomain],
		ClientEndpoint:   h[fClientEndpoint],
		ServerEndpoint:   h[fServerEndpoint],
		ApplicationToken: h[fAppToken],
		Scope:            h[fScope],
		Version:          h[fVersion],
		AppStatus:        h[fAppStatus],
		Lang:             h[fLang],
		InstalledBy:      installedBy,
		CreatedAt:        unixTime(h[fCreatedAt]),
		UpdatedAt:        unixTime(h[fUpdatedAt]),
		ActivatedAt:      unixTime(h[fActivatedAt]),
		BoundVersion:     h[fBoundVersion],
		BoundAt:          unixTime(h[fBoundAt]),
		LastError:        h[fLastError],
	}
}

func unixTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// CheckMemberID reports an error wrapping ErrBadMemberID unless memberID can be a
// Bitrix24 member_id: 1 to 64 letters, digits, '-', '_' or '.'. Anything else could
// break out of the portal's keys (braces, glob characters) and is refused.
func CheckMemberID(memberID string) error {
	if memberID == "" || len(memberID) > 64 {
		return fmt.Errorf("%w: length %d", ErrBadMemberID, len(memberID))
	}
	for _, r := range memberID {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("%w: character %q", ErrBadMemberID, r)
		}
	}
	return nil
}

// Portal returns the record of the portal memberID, or ErrUnknownPortal.
func (s *Store) Portal(ctx context.Context, memberID string) (*Portal, error) {
	if err := CheckMemberID(memberID); err != nil {
		return nil, err
	}
	h, err := s.rdb.HGetAll(ctx, keyspace.Portal(memberID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read portal %s: %w", memberID, err)
	}
	p := portalFrom(memberID, h)
	if p == nil {
		return nil, fmt.Errorf("portal %s: %w", memberID, ErrUnknownPortal)
	}
	return p, nil
}

// CheckApplicationToken returns the portal memberID when token is its stored
// application token, compared in constant time. An unknown or deleted portal, a
// portal with no stored token and a wrong token all give ErrForbidden.
func (s *Store) CheckApplicationToken(ctx context.Context, memberID, token string) (
	*Portal, error) {
	p, err := s.Portal(ctx, memberID)
	if errors.Is(err, ErrUnknownPortal) || errors.Is(err, ErrBadMemberID) {
		return nil, fmt.Errorf("check application token: %w", ErrForbidden)
	}
	if err != nil {
		return nil, err
	}
	if p.Status == StatusDeleted || !SameToken(p.ApplicationToken, token) {
		return nil, fmt.Errorf("check application token of portal %s: %w", memberID, ErrForbidden)
	}
	return p, nil
}

// SameToken reports whether the stored token is set and equals the given one,
// compared in constant time.
func SameToken(stored, given string) bool {
	return stored != "" && subtle.ConstantTimeCompare([]byte(stored), []byte(given)) == 1
}

// ActivePortals returns the member_ids of every active portal, in no order.
func (s *Store) ActivePortals(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, keyspace.ActivePortals()).Result()
	if err != nil {
		return nil, fmt.Errorf("list active portals: %w", err)
	}
	return ids, nil
}

// domainOf returns the host[:port] of an endpoint URL, "" when it has none.
func domainOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// isNil reports whether err is redis.Nil.
func isNil(err error) bool { return errors.Is(err, redis.Nil) }
