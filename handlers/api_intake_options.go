package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/intake"
)

// maxWindowMinutes is the longest time, in minutes, that a source may recognise a
// repeated post.
const maxWindowMinutes = int(intake.MaxIdempotencyWindow / time.Minute)

// intakeOptionsView is a source's options as the Intake tab shows them.
type intakeOptionsView struct {
	CRMSource        string `json:"crm_source"`
	AllowResponsible bool   `json:"allow_responsible"`
	RatePerMinute    int    `json:"rate_per_minute"`
	WindowMinutes    int    `json:"idempotency_window_minutes"`
}

func newIntakeOptionsView(o intake.Options) intakeOptionsView {
	return intakeOptionsView{CRMSource: o.CRMSource, AllowResponsible: o.AllowResponsible,
		RatePerMinute: o.RatePerMinute, WindowMinutes: int(o.IdempotencyWindow / time.Minute)}
}

// intakeOptionsRequest is the body of PATCH /api/intake/:id/options; a field left
// out keeps its value.
type intakeOptionsRequest struct {
	CRMSource        *string `json:"crm_source"`
	AllowResponsible *bool   `json:"allow_responsible"`
	RatePerMinute    *int    `json:"rate_per_minute"`
	WindowMinutes    *int    `json:"idempotency_window_minutes"`
}

// apply returns opts changed as r asks, or a message per field that is out of
// bounds. The CRM source code is checked by the store.
func (r *intakeOptionsRequest) apply(opts intake.Options) (intake.Options, map[string]string) {
	fields := map[string]string{}
	if r.CRMSource != nil {
		opts.CRMSource = *r.CRMSource
	}
	if r.AllowResponsible != nil {
		opts.AllowResponsible = *r.AllowResponsible
	}
	if n := r.RatePerMinute; n != nil {
		if *n < 1 || *n > intake.MaxRatePerMinute {
			fields["rate_per_minute"] = fmt.Sprintf("between 1 and %d", intake.MaxRatePerMinute)
		}
		opts.RatePerMinute = *n
	}
	if n := r.WindowMinutes; n != nil {
		if *n < 1 || *n > maxWindowMinutes {
			fields["idempotency_window_minutes"] = fmt.Sprintf("between 1 and %d minutes",
				maxWindowMinutes)
		}
		opts.IdempotencyWindow = time.Duration(*n) * time.Minute
	}
	return opts, fields
}

// optionsFields names the store's validation messages by the fields of
// intakeOptionsRequest.
func optionsFields(ve *intake.ValidationError) map[string]string {
	out := make(map[string]string, len(ve.Fields))
	for k, msg := range ve.Fields {
		if k == "idempotency_window" {
			k = "idempotency_window_minutes"
		}
		out[k] = msg
	}
	return out
}

func invalidOptions(fields map[string]string) error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_intake_options",
		Message: "The options of the intake address were not saved.", Fields: fields}
}

func (s *Settings) patchIntakeOptions(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Intake == nil {
		return errNoIntake()
	}
	var req intakeOptionsRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	id := c.Param("id")
	src, err := s.cfg.Intake.Source(ctx, id)
	if err == nil && src.MemberID != sess.MemberID {
		err = intake.ErrNotFound
	}
	if errors.Is(err, intake.ErrNotFound) {
		return errNoSource()
	}
	if err != nil {
		return err
	}

	opts, fields := req.apply(src.Options)
	if len(fields) > 0 {
		return invalidOptions(fields)
	}
	src, err = s.cfg.Intake.Update(ctx, sess.MemberID, id, src.Name, opts)
	var ve *intake.ValidationError
	switch {
	case errors.As(err, &ve):
		return invalidOptions(optionsFields(ve))
	case errors.Is(err, intake.ErrNotFound):
		return errNoSource()
	case err != nil:
		return err
	}
	s.log.InfoContext(ctx, "intake options changed", "member_id", sess.MemberID,
		"user_id", sess.UserID, "source", id, "allow_responsible", opts.AllowResponsible,
		"rate_per_minute", src.Options.RatePerMinute)
	return jsonOK(c, s.newIntakeView(src))
}
