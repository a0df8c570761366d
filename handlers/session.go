package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/oauth"
)

// sessionContextKey is where RequireSession keeps the verified session.
const sessionContextKey = "leadrouter.session"

// SessionChecker verifies page session tokens (*oauth.Sessions).
type SessionChecker interface {
	Verify(token string) (*oauth.Session, error)
}

// PortalReader reads a portal's record (oauth.Store).
type PortalReader interface {
	Portal(ctx context.Context, memberID string) (*oauth.Portal, error)
}

// RequireSession is middleware for the settings API: the request must carry a
// page session token as "Authorization: Bearer <token>", signed, unexpired, and
// for a portal that is still installed. It puts the session in the context for
// SessionFrom; anything else is answered with 401 and stops the chain. Responses
// are marked no-store. portals may be nil to skip the installed check.
func RequireSession(log *slog.Logger, sessions SessionChecker,
	portals PortalReader) gin.HandlerFunc {
	return Handle(log, func(c *gin.Context) error {
		c.Header("Cache-Control", "no-store")
		token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || token == "" {
			return Errorf(http.StatusUnauthorized, "no_session",
				"Open LeadRouter from Bitrix24 to use this page.")
		}
		sess, err := sessions.Verify(token)
		if err != nil {
			return &Error{Status: http.StatusUnauthorized, Code: "bad_session",
				Message: "The page session has expired. Reload the page.", Err: err}
		}
		SetMember(c, sess.MemberID)
		if portals != nil {
			p, err := portals.Portal(c.Request.Context(), sess.MemberID)
			switch {
			case errors.Is(err, oauth.ErrUnknownPortal) || err == nil && p.Status == oauth.StatusDeleted:
				return Errorf(http.StatusUnauthorized, "not_installed",
					"LeadRouter is not installed on this portal.")
			case err != nil:
				return err
			}
		}
		c.Set(sessionContextKey, sess)
		return nil
	})
}

// SessionFrom returns the session RequireSession verified, or nil.
func SessionFrom(c *gin.Context) *oauth.Session {
	v, _ := c.Get(sessionContextKey)
	s, _ := v.(*oauth.Session)
	return s
}

// FrameAncestors returns a Content-Security-Policy frame-ancestors directive that
// lets the page be framed by itself and by the given portal origins (as
// oauth.Portal.Origin returns them). Anything that is not a plain scheme://host is
// left out, so that a stored value can never add a directive.
func FrameAncestors(origins ...string) string {
	out := "frame-ancestors 'self'"
	for _, o := range origins {
		if plainOrigin(o) {
			out += " " + o
		}
	}
	return out
}

// AllowFraming sets the headers that let the portal frame a page: no
// X-Frame-Options, and a CSP whose only directive is frame-ancestors. Pages with a
// fuller CSP add FrameAncestors to it instead.
func AllowFraming(c *gin.Context, origins ...string) {
	h := c.Writer.Header()
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", FrameAncestors(origins...))
}

// plainOrigin reports whether s is exactly scheme://host[:port] over http(s).
func plainOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	return !strings.ContainsAny(s, " ;,'\"")
}
