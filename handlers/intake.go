package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/oauth"
)

// IntakeSecretHeader is the header that carries an intake URL's secret.
const IntakeSecretHeader = "X-LeadRouter-Secret"

// IdempotencyKeyHeader is the header that carries a post's idempotency key.
const IdempotencyKeyHeader = "Idempotency-Key"

// Intake serves the lead intake webhook: landing pages, ad platforms and scripts
// post leads to /intake/<source id> with the source's secret, and LeadRouter
// creates each lead with the owner routing picks.
type Intake struct {
	Sources *intake.Store
	Service *intake.Service
	// Portals, when set, lets posts for an uninstalled portal be refused with 410
	// instead of waiting for a portal that is gone. *oauth.Store implements it.
	Portals IntakePortals
	Log     *slog.Logger
	// Wait is how long a post waits for its lead to be created before it is
	// answered 202 with an intake ID instead of 201 with the lead ID; zero answers
	// 202 at once.
	Wait time.Duration
}

// Register adds the intake routes to r.
func (h *Intake) Register(r gin.IRoutes) {
	r.POST("/intake/:source", Handle(h.Log, h.post))
	r.GET("/intake/:source/status/:intake", Handle(h.Log, h.status))
	r.OPTIONS("/intake/:source", h.preflight)
	r.OPTIONS("/intake/:source/status/:intake", h.preflight)
}

// IntakePortals looks up the portal an intake source belongs to.
type IntakePortals interface {
	Portal(ctx context.Context, memberID string) (*oauth.Portal, error)
}

// intakeAnswer is the body of a successful post or status request.
type intakeAnswer struct {
	*intake.Receipt
	StatusURL string   `json:"status_url"`
	Ignored   []string `json:"ignored,omitempty"`
}

func (h *Intake) post(c *gin.Context) error {
	allowBrowsers(c)
	body, err := readIntakeBody(c)
	if err != nil {
		return h.refuse("too_large", err)
	}
	post, parseErr := intake.Parse(c.GetHeader("Content-Type"), body)
	src, err := h.authenticate(c, postSecret(c, post))
	if err != nil {
		return err
	}
	if err := h.portalLive(c, src); err != nil {
		return err
	}
	if err := h.limit(c, src); err != nil {
		return err
	}
	if parseErr != nil {
		return h.refuse("invalid", parseError(parseErr))
	}
	ctx := c.Request.Context()
	rc, err := h.Service.Accept(ctx, src, post, c.GetHeader(IdempotencyKeyHeader))
	var fe intake.FieldErrors
	switch {
	case errors.As(err, &fe):
		return h.refuse("invalid", invalidLead(fe))
	case errors.Is(err, intake.ErrPortalGone):
		return h.refuse("portal_gone", portalGone())
	}
	if err != nil {
		return err
	}
	if rc.Duplicate {
		intake.PostsReceived.WithLabelValues("duplicate").Inc()
	} else {
		intake.PostsReceived.WithLabelValues("accepted").Inc()
		if h.Wait > 0 {
			if rc, err = h.Service.Wait(ctx, src, rc.IntakeID, h.Wait); err != nil {
				return err
			}
		}
	}
	c.JSON(postStatus(rc), intakeAnswer{Receipt: rc, Ignored: post.Ignored,
		StatusURL: src.Path() + "/status/" + rc.IntakeID})
	return nil
}

// postSecret is the secret a post carries: in the header, the query or the body.
func postSecret(c *gin.Context, post *intake.Post) string {
	if s := c.GetHeader(IntakeSecretHeader); s != "" {
		return s
	}
	if s := c.Query("secret"); s != "" {
		return s
	}
	if post != nil {
		return post.Secret
	}
	return ""
}

// portalLive refuses a post whose portal uninstalled LeadRouter. A blocked portal
// (its tokens need an administrator) still gets its posts: they wait for it.
func (h *Intake) portalLive(c *gin.Context, src *intake.Source) error {
	if h.Portals == nil {
		return nil
	}
	p, err := h.Portals.Portal(c.Request.Context(), src.MemberID)
	if errors.Is(err, oauth.ErrUnknownPortal) || err == nil && p.Status == oauth.StatusDeleted {
		return h.refuse("portal_gone", portalGone())
	}
	return err
}

// portalGone is the answer to a post whose portal uninstalled LeadRouter.
func portalGone() error {
	return Errorf(http.StatusGone, "portal_gone",
		"The Bitrix24 portal of this intake URL no longer uses LeadRouter.")
}

// limit counts the post against its source's rate limit.
func (h *Intake) limit(c *gin.Context, src *intake.Source) error {
	wait, err := h.Service.Allow(c.Request.Context(), src)
	if !errors.Is(err, intake.ErrRateLimited) {
		return err
	}
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return h.refuse("rate_limited", Errorf(http.StatusTooManyRequests, "rate_limited",
		"This intake URL takes at most "+strconv.Itoa(src.Options.RatePerMinute)+
			" posts a minute; try again after Retry-After seconds."))
}

// postStatus is the HTTP status of a post's answer: 201 for a lead created now,
// 200 for a repeat of a created one, 202 while the lead is pending (or failed).
func postStatus(rc *intake.Receipt) int {
	switch {
	case rc.State != intake.Created:
		return http.StatusAccepted
	case rc.Duplicate:
		return http.StatusOK
	}
	return http.StatusCreated
}

func (h *Intake) status(c *gin.Context) error {
	allowBrowsers(c)
	src, err := h.authenticate(c, postSecret(c, nil))
	if err != nil {
		return err
	}
	rc, err := h.Service.Status(c.Request.Context(), src, c.Param("intake"))
	if errors.Is(err, intake.ErrUnknownPost) {
		return Errorf(http.StatusNotFound, "unknown_post",
			"This intake URL accepted no post with that intake ID (records are kept seven days).")
	}
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, intakeAnswer{Receipt: rc,
		StatusURL: src.Path() + "/status/" + rc.IntakeID})
	return nil
}

// authenticate finds the source of the request's URL and checks secret against it.
func (h *Intake) authenticate(c *gin.Context, secret string) (*intake.Source, error) {
	if secret == "" {
		return nil, h.refuse("unauthorized", Errorf(http.StatusUnauthorized, "missing_secret",
			"Send the intake URL's secret in the "+IntakeSecretHeader+
				" header or a secret field."))
	}
	src, err := h.Sources.Authenticate(c.Request.Context(), c.Param("source"), secret)
	switch {
	case errors.Is(err, intake.ErrNotFound):
		return nil, h.refuse("unauthorized", Errorf(http.StatusNotFound, "unknown_source",
			"There is no such intake URL; it may have been revoked."))
	case errors.Is(err, intake.ErrBadSecret):
		return nil, h.refuse("unauthorized", Errorf(http.StatusUnauthorized, "bad_secret",
			"The secret does not match this intake URL; it may have been rotated."))
	case err != nil:
		return nil, err
	}
	SetMember(c, src.MemberID)
	return src, nil
}

// refuse counts a refused post and returns its error.
func (h *Intake) refuse(outcome string, err error) error {
	intake.PostsReceived.WithLabelValues(outcome).Inc()
	return err
}

// readIntakeBody reads at most intake.MaxBody bytes of the request body.
func readIntakeBody(c *gin.Context) ([]byte, error) {
	tooLarge := Errorf(http.StatusRequestEntityTooLarge, "body_too_large",
		"The body is larger than "+strconv.Itoa(intake.MaxBody/1024)+" KB.")
	if c.Request.ContentLength > intake.MaxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, intake.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge
	}
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "unreadable_body",
			Message: "The body could not be read.", Err: err}
	}
	return body, nil
}

func parseError(err error) error {
	var fe intake.FieldErrors
	if errors.As(err, &fe) {
		return invalidLead(fe)
	}
	if errors.Is(err, intake.ErrUnsupportedType) {
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Send JSON (application/json) or a form (application/x-www-form-urlencoded, "+
				"multipart/form-data).")
	}
	return err
}

func invalidLead(fe intake.FieldErrors) error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_lead",
		Message: "The post does not describe a lead: " + fe.Error() + ".", Fields: fe}
}

// allowBrowsers lets a landing page's own script post to the intake URL.
func allowBrowsers(c *gin.Context) {
	c.Header("Access-Control-Allow-Origin", "*")
	c.Header("Access-Control-Expose-Headers", RequestIDHeader+", Retry-After")
}

func (h *Intake) preflight(c *gin.Context) {
	allowBrowsers(c)
	c.Header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	c.Header("Access-Control-Allow-Headers",
		"Content-Type, "+IntakeSecretHeader+", "+IdempotencyKeyHeader)
	c.Header("Access-Control-Max-Age", "600")
	c.Status(http.StatusNoContent)
}
