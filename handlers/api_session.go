package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/oauth"
)

// sessionRenewGrace is how long after its end a page session may still be traded
// for a new one: a page left open over a lunch break renews without a reload.
const sessionRenewGrace = 12 * time.Hour

// renewRequest is the body of POST /api/session: the fresh auth the frame SDK got
// from the portal (BX24.refreshAuth / getAuth).
type renewRequest struct {
	AuthID   string `json:"auth_id"`
	MemberID string `json:"member_id"`
}

// postSession trades a page session that ran out, and fresh auth from the portal,
// for a new session token. The auth is checked as the page open checks it
// (VerifyFrame: against the portal address stored for that member_id); the old
// session, signed by us, names the portal and the person the auth must belong to.
// Anything else is answered with 401 and the page offers a reload.
func (s *Settings) postSession(c *gin.Context) error {
	c.Header("Cache-Control", "no-store")
	ctx := c.Request.Context()
	old, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || old == "" {
		return Errorf(http.StatusUnauthorized, "no_session",
			"Open LeadRouter from Bitrix24 to use this page.")
	}
	prev, err := s.cfg.Sessions.VerifyRenewable(old, sessionRenewGrace)
	if err != nil {
		return &Error{Status: http.StatusUnauthorized, Code: "bad_session",
			Message: "The page session has expired. Reload the page.", Err: err}
	}
	var req renewRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.AuthID == "" || req.MemberID != prev.MemberID {
		return Errorf(http.StatusUnauthorized, "renew_refused",
			"The page session could not be renewed. Reload the page.")
	}
	form := url.Values{"AUTH_ID": {req.AuthID}, "member_id": {req.MemberID},
		"PLACEMENT": {"DEFAULT"}, "LANG": {prev.Lang}}
	user, err := s.cfg.Frames.VerifyFrame(ctx, url.Values{}, form)
	if err != nil {
		status := http.StatusUnauthorized
		if !errors.Is(err, oauth.ErrForbidden) && !errors.Is(err, oauth.ErrBadFrame) {
			status = http.StatusServiceUnavailable // the portal could not be asked
		}
		return &Error{Status: status, Code: "renew_refused",
			Message: "The page session could not be renewed. Reload the page.", Err: err}
	}
	if user.UserID != prev.UserID {
		return Errorf(http.StatusUnauthorized, "renew_refused",
			"The page session could not be renewed. Reload the page.")
	}
	p, err := s.cfg.Portals.Portal(ctx, user.MemberID)
	switch {
	case errors.Is(err, oauth.ErrUnknownPortal) || err == nil && p.Status == oauth.StatusDeleted:
		return Errorf(http.StatusUnauthorized, "not_installed",
			"LeadRouter is not installed on this portal.")
	case err != nil:
		return err
	}
	if err := s.checkReader(ctx, user.MemberID, user.UserID, user.Admin); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "page session renewed", "member_id", user.MemberID,
		"user_id", user.UserID)
	return jsonOK(c, gin.H{"token": s.cfg.Sessions.Issue(*user)})
}
