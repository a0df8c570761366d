package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/intake"
)

// intakeView is one intake address. Secret is set only in the answer that created
// or rotated it: the server keeps only its hash.
type intakeView struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	URL     string            `json:"url"`
	Secret  string            `json:"secret,omitempty"`
	Options intakeOptionsView `json:"options"`
}

// newIntakeView shows src without a secret.
func (s *Settings) newIntakeView(src *intake.Source) intakeView {
	return intakeView{ID: src.ID, Name: src.Name, URL: s.intakeURL(src),
		Options: newIntakeOptionsView(src.Options)}
}

// errNoIntake is the answer of the intake API when intake webhooks are off.
func errNoIntake() error {
	return Errorf(http.StatusServiceUnavailable, "no_intake", "Intake webhooks are not enabled.")
}

// errNoSource is the answer of the intake API about a source the portal does not have.
func errNoSource() error {
	return Errorf(http.StatusNotFound, "no_source", "There is no such intake address.")
}

func (s *Settings) intakeURL(src *intake.Source) string {
	return strings.TrimSuffix(s.cfg.PublicURL, "/") + src.Path()
}

func (s *Settings) getIntake(c *gin.Context) error {
	sess := session(c)
	if s.cfg.Intake == nil {
		return jsonOK(c, gin.H{"available": false})
	}
	sources, err := s.cfg.Intake.List(c.Request.Context(), sess.MemberID)
	if err != nil {
		return err
	}
	out := make([]intakeView, 0, len(sources))
	for _, src := range sources {
		out = append(out, s.newIntakeView(src))
	}
	return jsonOK(c, gin.H{"available": true, "sources": out})
}

// intakeRequest is the body of POST /api/intake.
type intakeRequest struct {
	Name string `json:"name"`
}

func (s *Settings) postIntake(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Intake == nil {
		return errNoIntake()
	}
	var req intakeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	src, secret, err := s.cfg.Intake.Create(ctx, sess.MemberID, req.Name, intake.Options{})
	var ve *intake.ValidationError
	if errors.As(err, &ve) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_intake",
			Message: "The intake address was not created.", Fields: ve.Fields}
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake source created", "member_id", sess.MemberID,
		"user_id", sess.UserID, "source", src.ID)
	view := s.newIntakeView(src)
	view.Secret = secret
	return jsonOK(c, view)
}

func (s *Settings) postIntakeRotate(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Intake == nil {
		return errNoIntake()
	}
	id := c.Param("id")
	secret, err := s.cfg.Intake.Rotate(ctx, sess.MemberID, id)
	if errors.Is(err, intake.ErrNotFound) {
		return errNoSource()
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake secret rotated", "member_id", sess.MemberID,
		"user_id", sess.UserID, "source", id)
	return jsonOK(c, gin.H{"id": id, "secret": secret})
}

func (s *Settings) deleteIntake(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Intake == nil {
		return errNoIntake()
	}
	id := c.Param("id")
	err := s.cfg.Intake.Revoke(ctx, sess.MemberID, id)
	if errors.Is(err, intake.ErrNotFound) {
		return errNoSource()
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake source revoked", "member_id", sess.MemberID,
		"user_id", sess.UserID, "source", id)
	return jsonOK(c, gin.H{"id": id, "revoked": true})
}
