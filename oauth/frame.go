package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// ErrBadFrame is wrapped by the errors of a page request that lacks what the
// portal always sends or carries something malformed.
var ErrBadFrame = errors.New("malformed page request")

// FrameRequest is what the portal posts into the application's frame when it opens
// a page: the query (DOMAIN, PROTOCOL, LANG, APP_SID) and the form (the rest).
// Every field comes from a browser: nothing here is trusted until verified.
type FrameRequest struct {
	Domain           string
	HTTPS            bool
	Lang             string
	AppSID           string
	AuthID           string
	AuthExpires      int64 // seconds
	RefreshID        string
	MemberID         string
	Status           string
	Placement        string
	PlacementOptions map[string]any
	ServerEndpoint   string // often absent
	ApplicationToken string // often absent
	ApplicationScope string // often absent
}

// ParseFrame reads a page request. Fields are taken from the form first and from
// the query when the form lacks them, so that GET opens work too. It needs
// member_id and AUTH_ID.
func ParseFrame(query, form url.Values) (*FrameRequest, error) {
	get := func(k string) string {
		if v := strings.TrimSpace(form.Get(k)); v != "" {
			return v
		}
		return strings.TrimSpace(query.Get(k))
	}
	r := &FrameRequest{
		Domain:           get("DOMAIN"),
		HTTPS:            get("PROTOCOL") != "0",
		Lang:             Lang(get("LANG")),
		AppSID:           get("APP_SID"),
		AuthID:           get("AUTH_ID"),
		RefreshID:        get("REFRESH_ID"),
		MemberID:         get("member_id"),
		Status:           get("status"),
		Placement:        get("PLACEMENT"),
		ServerEndpoint:   get("SERVER_ENDPOINT"),
		ApplicationToken: get("APPLICATION_TOKEN"),
		ApplicationScope: get("APPLICATION_SCOPE"),
	}
	if r.MemberID == "" {
		return nil, fmt.Errorf("%w: no member_id", ErrBadFrame)
	}
	if err := CheckMemberID(r.MemberID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if r.AuthID == "" {
		return nil, fmt.Errorf("%w: no AUTH_ID", ErrBadFrame)
	}
	if r.Placement == "" {
		r.Placement = "DEFAULT"
	}
	if s := get("AUTH_EXPIRES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: AUTH_EXPIRES is not a number of seconds", ErrBadFrame)
		}
		r.AuthExpires = n
	}
	opts, err := placementOptions(get("PLACEMENT_OPTIONS"))
	if err != nil {
		return nil, err
	}
	r.PlacementOptions = opts
	return r, nil
}

// placementOptions decodes PLACEMENT_OPTIONS, a JSON object sent as a string. The
// portal sends "undefined" for some placements; that and "" give nil.
func placementOptions(s string) (map[string]any, error) {
	if s == "" || s == "undefined" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("%w: PLACEMENT_OPTIONS is not a JSON object", ErrBadFrame)
	}
	return m, nil
}

// Lang returns a Bitrix24 language code when s looks like one (two to five
// lower-case letters), "en" otherwise.
func Lang(s string) string {
	s = strings.ToLower(s)
	if len(s) < 2 || len(s) > 5 {
		return "en"
	}
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return "en"
		}
	}
	return s
}

// FrameUser is the verified user of a page request.
type FrameUser struct {
	MemberID         string
	UserID           int64
	Admin            bool
	Lang             string
	Name             string
	Placement        string
	PlacementOptions map[string]any
	// Origin is the portal's verified web origin, for frame-ancestors.
	Origin string
}

// Profile is the current user as the portal's profile method describes them.
type Profile struct {
	ID       int64
	Admin    bool
	Name     string
	LastName string
}

type profileWire struct {
	ID       bitrix.ID `json:"ID"`
	Admin    bool      `json:"ADMIN"`
	Name     string    `json:"NAME"`
	LastName string    `json:"LAST_NAME"`
}

// FullName joins the user's first and last name.
func (p Profile) FullName() string { return strings.TrimSpace(p.Name + " " + p.LastName) }

// Profile asks the portal at endpoint (a stored or OAuth-server-given client
// endpoint, never a posted one) who owns accessToken. A token the portal refuses
// gives ErrForbidden.
func (s *Store) Profile(ctx context.Context, memberID, endpoint, accessToken string) (
	Profile, error) {
	auth := staticAuth{
		creds: bitrix.Credentials{Endpoint: endpoint, AccessToken: accessToken},
		moved: func(ctx context.Context, to string) error { return s.Moved(ctx, memberID, to) },
	}
	var w profileWire
	c := bitrix.NewClient(memberID, auth, s.clientOptions())
	if err := c.Call(ctx, "profile", nil, &w); err != nil {
		return Profile{}, fmt.Errorf("profile on portal %s: %w", memberID, callerFault(err))
	}
	if w.ID <= 0 {
		return Profile{}, fmt.Errorf("profile on portal %s: no user: %w", memberID, ErrForbidden)
	}
	return Profile{ID: int64(w.ID), Admin: w.Admin, Name: w.Name, LastName: w.LastName}, nil
}

// VerifyFrame verifies a page request and returns its user. The posted AUTH_ID is
// checked against the portal address stored for the posted member_id; a portal
// with no usable record is checked with the OAuth server's app.info instead, whose
// client endpoint is then asked. The posted DOMAIN is never called.
//
// A malformed request gives ErrBadFrame; a token that does not belong to that
// portal, or a posted APPLICATION_TOKEN that differs from the stored one, gives
// ErrForbidden.
func (s *Store) VerifyFrame(ctx context.Context, query, form url.Values) (*FrameUser, error) {
	req, err := ParseFrame(query, form)
	if err != nil {
		return nil, err
	}
	return s.VerifyFrameRequest(ctx, req)
}

// VerifyFrameRequest is VerifyFrame for a request already parsed.
func (s *Store) VerifyFrameRequest(ctx context.Context, req *FrameRequest) (*FrameUser, error) {
	endpoint, err := s.frameEndpoint(ctx, req)
	if err != nil {
		return nil, err
	}
	prof, err := s.Profile(ctx, req.MemberID, endpoint, req.AuthID)
	if err != nil {
		return nil, err
	}
	if prof.Admin {
		if err := s.adoptFrame(ctx, req, prof.ID); err != nil {
			s.log.WarnContext(ctx, "administrator's page not adopted", "member_id", req.MemberID,
				"error", err)
		}
	}
	return &FrameUser{
		MemberID:         req.MemberID,
		UserID:           prof.ID,
		Admin:            prof.Admin,
		Lang:             req.Lang,
		Name:             prof.FullName(),
		Placement:        req.Placement,
		PlacementOptions: req.PlacementOptions,
		Origin:           origin(endpoint),
	}, nil
}

// frameEndpoint returns the client endpoint a page's token is checked against.
func (s *Store) frameEndpoint(ctx context.Context, req *FrameRequest) (string, error) {
	p, err := s.Portal(ctx, req.MemberID)
	if err != nil && !errors.Is(err, ErrUnknownPortal) {
		return "", err
	}
	if p != nil && p.Status != StatusDeleted && p.ClientEndpoint != "" {
		if req.ApplicationToken != "" && p.ApplicationToken != "" &&
			!SameToken(p.ApplicationToken, req.ApplicationToken) {
			return "", fmt.Errorf("page of portal %s: application token differs: %w",
				req.MemberID, ErrForbidden)
		}
		return p.ClientEndpoint, nil
	}
	info, err := s.VerifyAppInfo(ctx, req.ServerEndpoint, req.AuthID, req.MemberID, req.Domain)
	if err != nil {
		return "", err
	}
	return info.Install.ClientEndpoint, nil
}

// adoptFrame lets a verified administrator's page repair what the portal lost: a
// blocked portal takes the page's fresh token pair and becomes active again, and a
// portal that never learnt its application token (its ONAPPINSTALL was lost) takes
// the one the page carries. Nothing changes for a healthy portal.
func (s *Store) adoptFrame(ctx context.Context, req *FrameRequest, userID int64) error {
	var adopted *Portal
	var tokensWritten bool
	err := s.watchPortal(ctx, req.MemberID, func(tx *redis.Tx, cur *Portal, _ bool) error {
		adopted, tokensWritten = nil, false
		if cur == nil {
			return nil
		}
		unblock := cur.Status == StatusBlocked && req.RefreshID != ""
		fillToken := cur.Live() && cur.ApplicationToken == "" && req.ApplicationToken != ""
		if !unblock && !fillToken {
			return nil
		}
		now := s.now()
		p := *cur
		p.UpdatedAt, p.LastError = now, ""
		if fillToken {
			p.ApplicationToken = req.ApplicationToken
		}
		if unblock {
			p.Status = StatusActive
		}
		adopted, tokensWritten = &p, unblock
		_, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Del(ctx, keyspace.Portal(req.MemberID))
			pipe.HSet(ctx, keyspace.Portal(req.MemberID), p.fields())
			if unblock {
				t := Tokens{AccessToken: req.AuthID, RefreshToken: req.RefreshID, UserID: userID}
				if req.AuthExpires > 0 {
					t.Expiry = now.Add(time.Duration(req.AuthExpires) * time.Second)
				}
				pipe.Del(ctx, keyspace.Token(req.MemberID))
				pipe.HSet(ctx, keyspace.Token(req.MemberID), t.fields(now))
			}
			return nil
		})
		return err
	})
	if err != nil || adopted == nil {
		return err
	}
	s.index(ctx, adopted, tokensWritten)
	s.log.InfoContext(ctx, "portal repaired from an administrator's page", "member_id", req.MemberID,
		"unblocked", tokensWritten)
	return nil
}
