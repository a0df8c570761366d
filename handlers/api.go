package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

// maxAPIBody bounds a settings API request body.
const maxAPIBody = 1 << 20

// registerAPI adds the settings API. Every route but the session renewal needs a
// session token (RequireSession); reading needs an administrator or a reader the administrator
// allowed; changing needs an administrator.
func (s *Settings) registerAPI(r gin.IRoutes) {
	auth := RequireSession(s.log, s.cfg.Sessions, s.cfg.Portals)
	read := func(h HandlerFunc) []gin.HandlerFunc {
		return []gin.HandlerFunc{auth, Handle(s.log, s.allowed(false, h))}
	}
	write := func(h HandlerFunc) []gin.HandlerFunc {
		return []gin.HandlerFunc{auth, Handle(s.log, s.allowed(true, h))}
	}

	// A page whose session ran out trades it, with fresh portal auth, for a new one.
	r.POST("/api/session", Handle(s.log, s.postSession))
	r.GET("/api/settings", read(s.getSettings)...)
	r.PUT("/api/settings", write(s.putSettings)...)
	r.GET("/api/catalog", read(s.getCatalog)...)
	r.GET("/api/versions", read(s.getVersions)...)
	r.GET("/api/versions/:version", read(s.getVersion)...)
	r.POST("/api/versions/:version/rollback", write(s.postRollback)...)
	r.GET("/api/overview", read(s.getOverview)...)
	r.POST("/api/dead-letters/:id/retry", write(s.postRetry)...)
	r.GET("/api/log", read(s.getLog)...)
	r.POST("/api/simulate", read(s.postSimulate)...)
	r.GET("/api/intake", read(s.getIntake)...)
	r.POST("/api/intake", write(s.postIntake)...)
	r.POST("/api/intake/:id/rotate", write(s.postIntakeRotate)...)
	r.PATCH("/api/intake/:id/options", write(s.patchIntakeOptions)...)
	r.GET("/api/intake/dead-letters", read(s.getIntakeDead)...)
	r.POST("/api/intake/dead-letters/retry", write(s.postIntakeRetryAll)...)
	r.POST("/api/intake/dead-letters/:id/retry", write(s.postIntakeRetry)...)
	r.DELETE("/api/intake/:id", write(s.deleteIntake)...)
	r.GET("/api/state", read(s.getState)...)
	r.PUT("/api/access", write(s.putAccess)...)
}

// allowed checks the session's right to read or to change, then runs h.
func (s *Settings) allowed(change bool, h HandlerFunc) HandlerFunc {
	return func(c *gin.Context) error {
		sess := SessionFrom(c)
		if sess == nil {
			return Errorf(http.StatusUnauthorized, "no_session",
				"Open LeadRouter from Bitrix24 to use this page.")
		}
		if change && !sess.Admin {
			return Errorf(http.StatusForbidden, "admin_only",
				"Only a portal administrator can change LeadRouter's settings.")
		}
		if err := s.checkReader(c.Request.Context(), sess.MemberID, sess.UserID, sess.Admin); err != nil {
			return err
		}
		return h(c)
	}
}

// session returns the verified session of an API request.
func session(c *gin.Context) *oauth.Session { return SessionFrom(c) }

// checkReader reports an error unless the user may read the portal's settings:
// administrators always, others when an administrator allowed them.
func (s *Settings) checkReader(ctx context.Context, memberID string, userID int64,
	admin bool) error {
	if admin {
		return nil
	}
	ok, err := s.cfg.Redis.SIsMember(ctx, keyspace.SettingsReaders(memberID),
		strconv.FormatInt(userID, 10)).Result()
	if err != nil {
		return fmt.Errorf("read settings readers of portal %s: %w", memberID, err)
	}
	if !ok {
		return Errorf(http.StatusForbidden, "no_access",
			"A portal administrator has not given you access to LeadRouter.")
	}
	return nil
}

// readers returns the user IDs an administrator allowed to read.
func (s *Settings) readers(ctx context.Context, memberID string) ([]int64, error) {
	raw, err := s.cfg.Redis.SMembers(ctx, keyspace.SettingsReaders(memberID)).Result()
	if err != nil {
		return nil, fmt.Errorf("read settings readers of portal %s: %w", memberID, err)
	}
	ids := make([]int64, 0, len(raw))
	for _, r := range raw {
		if id, err := strconv.ParseInt(r, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// decodeJSON reads a JSON request body into v, refusing unknown fields and bodies
// over maxAPIBody with a clear 400.
func decodeJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, "too_large", "The request is too large.")
		}
		return &Error{Status: http.StatusBadRequest, Code: "bad_json",
			Message: "The request is not valid JSON for this action: " + jsonProblem(err), Err: err}
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("the field %q has the wrong type.", typeErr.Field)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field") {
		return strings.TrimPrefix(err.Error(), "json: ") + "."
	}
	return "it could not be read."
}

// pathInt reads a positive integer path parameter.
func pathInt(c *gin.Context, name string) (int, error) {
	n, err := strconv.Atoi(c.Param(name))
	if err != nil || n <= 0 {
		return 0, Errorf(http.StatusBadRequest, "bad_"+name, "The "+name+" must be a positive number.")
	}
	return n, nil
}
