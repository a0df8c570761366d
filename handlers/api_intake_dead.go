package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/intake"
)

// maxIntakeDeadShown is how many of the newest intake dead letters the page lists;
// Retry all sends every one of them.
const maxIntakeDeadShown = 100

// intakeDeadView is an intake post whose lead could not be created: its source,
// why and when, and nothing about the person it describes.
type intakeDeadView struct {
	ID       string `json:"id"`
	SourceID string `json:"source_id"`
	Source   string `json:"source"`
	Problem  string `json:"problem"`
	At       string `json:"at"`
}

// intakeDeadList is the answer of GET /api/intake/dead-letters. Total counts them
// all, also those beyond the list.
type intakeDeadList struct {
	Available   bool             `json:"available"`
	DeadLetters []intakeDeadView `json:"dead_letters"`
	Total       int              `json:"total"`
}

func (s *Settings) getIntakeDead(c *gin.Context) error {
	sess := session(c)
	if s.cfg.IntakePosts == nil {
		return jsonOK(c, intakeDeadList{DeadLetters: []intakeDeadView{}})
	}
	dead, total, err := s.cfg.IntakePosts.DeadLetters(c.Request.Context(), sess.MemberID,
		maxIntakeDeadShown)
	if err != nil {
		return err
	}
	out := intakeDeadList{Available: true, DeadLetters: []intakeDeadView{}, Total: total}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, intakeDeadView{ID: d.IntakeID,
			SourceID: d.SourceID, Source: d.SourceName, Problem: d.Problem,
			At: d.At.UTC().Format("2006-01-02T15:04:05Z")})
	}
	return jsonOK(c, out)
}

func (s *Settings) postIntakeRetry(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.IntakePosts == nil {
		return errNoIntake()
	}
	id := c.Param("id")
	if id == "" || len(id) > 100 {
		return Errorf(http.StatusBadRequest, "bad_id", "The failed post is not named.")
	}
	err := s.cfg.IntakePosts.Retry(ctx, sess.MemberID, id)
	if errors.Is(err, intake.ErrUnknownPost) {
		return Errorf(http.StatusNotFound, "no_dead_letter", "This failed post is no longer waiting.")
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake dead letter retried", "member_id", sess.MemberID,
		"user_id", sess.UserID, "intake_id", id)
	return jsonOK(c, gin.H{"retried": 1})
}

func (s *Settings) postIntakeRetryAll(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.IntakePosts == nil {
		return errNoIntake()
	}
	n, err := s.cfg.IntakePosts.RetryAll(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "intake dead letters retried", "member_id", sess.MemberID,
		"user_id", sess.UserID, "count", n)
	return jsonOK(c, gin.H{"retried": n})
}
