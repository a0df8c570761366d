package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/intake"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// DefaultSDKURL is the pinned UMD build of Bitrix24's official frame SDK that the
// pages load when the configuration names no other.
const DefaultSDKURL = "https://cdn.jsdelivr.net/npm/@bitrix24/b24jssdk@2.2.0/dist/umd/index.min.js"

// The settings pages and their API call these narrow views of the other packages,
// so each can be replaced by its real implementation alone.

// FrameVerifier trusts a page the portal opened in its frame (oauth.Store).
type FrameVerifier interface {
	VerifyFrame(ctx context.Context, query, form url.Values) (*oauth.FrameUser, error)
}

// SessionCodec issues and checks the page's session tokens (oauth.Sessions).
type SessionCodec interface {
	Issue(u oauth.FrameUser) string
	Verify(token string) (*oauth.Session, error)
	// VerifyRenewable is Verify for a token that may have expired within grace.
	VerifyRenewable(token string, grace time.Duration) (*oauth.Session, error)
}

// PortalDirectory reads portal records and reaches a portal's REST API
// (oauth.Store).
type PortalDirectory interface {
	Portal(ctx context.Context, memberID string) (*oauth.Portal, error)
	Client(memberID string) *bitrix.Client
}

// SettingsStore keeps the versioned routing settings (routing.Engine).
type SettingsStore interface {
	Settings(ctx context.Context, memberID string) (*routing.Settings, int, error)
	SaveSettings(ctx context.Context, memberID string, s *routing.Settings, author int64) (int, error)
	SaveOver(ctx context.Context, memberID string, s *routing.Settings, author int64,
		base int) (int, error)
	Versions(ctx context.Context, memberID string) ([]routing.VersionInfo, error)
	Version(ctx context.Context, memberID string, v int) (*routing.Settings, error)
	Rollback(ctx context.Context, memberID string, v int, author int64) (int, error)
}

// Simulator runs leads through draft settings without touching live state
// (routing.Engine).
type Simulator interface {
	Simulate(ctx context.Context, memberID string, draft *routing.Settings, leads []routing.Lead,
		dir routing.Directory, now time.Time) (*routing.Report, error)
}

// AssignmentLog reads what the pipeline decided (queue.Queue).
type AssignmentLog interface {
	Log(ctx context.Context, memberID, query string, limit int) ([]queue.LogEntry, error)
	LeadHistory(ctx context.Context, memberID string, leadID int64) ([]queue.LogEntry, error)
	LeadMoves(ctx context.Context, memberID string, leadID int64) ([]queue.Move, error)
}

// PipelineHealth reads the pipeline's counters and failed work (queue.Queue).
type PipelineHealth interface {
	Stats(ctx context.Context, memberID string) (queue.Stats, error)
	DeadLetters(ctx context.Context, memberID string) ([]queue.DeadLetter, error)
	Retry(ctx context.Context, memberID, id string) (int, error)
	PeopleSkips(ctx context.Context, memberID string) ([]queue.PersonSkips, bool, error)
}

// IntakeSources manages the portal's intake webhook addresses (intake.Store).
type IntakeSources interface {
	Create(ctx context.Context, memberID, name string,
		opts intake.Options) (*intake.Source, string, error)
	List(ctx context.Context, memberID string) ([]*intake.Source, error)
	Source(ctx context.Context, id string) (*intake.Source, error)
	Update(ctx context.Context, memberID, id, name string,
		opts intake.Options) (*intake.Source, error)
	Rotate(ctx context.Context, memberID, id string) (string, error)
	Revoke(ctx context.Context, memberID, id string) error
}

// IntakePosts lists and sends again the intake posts whose lead could not be
// created (intake.Service).
type IntakePosts interface {
	DeadLetters(ctx context.Context, memberID string,
		limit int) ([]intake.DeadLetter, int, error)
	Retry(ctx context.Context, memberID, intakeID string) error
	RetryAll(ctx context.Context, memberID string) (int, error)
}

// SettingsConfig is what the settings pages and API are built from. Frames,
// Sessions, Portals, Engine, Redis and Assets are required; a nil Simulator, Log,
// Health, Intake or IntakePosts switches the matching part of the page off with a
// clear message.
type SettingsConfig struct {
	Frames   FrameVerifier
	Sessions SessionCodec
	Portals  PortalDirectory
	Engine   SettingsStore
	Redis    redis.UniversalClient
	Assets   *assets.Assets

	Simulator   Simulator
	Log         AssignmentLog
	Health      PipelineHealth
	Intake      IntakeSources
	IntakePosts IntakePosts

	// PublicURL is the https address the portal calls, for the intake URLs.
	PublicURL string
	// SDKURL is where pages load the frame SDK from; "" means DefaultSDKURL.
	SDKURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Settings serves the settings page (the DEFAULT placement at /app), the lead tab
// (/placement/lead-tab) and the settings API under /api. Pages accept POST and GET
// and trust only what VerifyFrame confirms; the API trusts only a session token in
// an Authorization: Bearer header, and scopes everything to the token's portal.
type Settings struct {
	cfg SettingsConfig
	log *slog.Logger

	peopleCache peopleCache
}

// NewSettings returns the settings pages and API.
func NewSettings(cfg SettingsConfig, log *slog.Logger) *Settings {
	if cfg.SDKURL == "" {
		cfg.SDKURL = DefaultSDKURL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Settings{cfg: cfg, log: log}
}

// Register adds the pages, the static files and the API to r.
func (s *Settings) Register(r gin.IRoutes) {
	page := Handle(s.log, s.showApp)
	r.GET("/app", page)
	r.POST("/app", page)
	tab := Handle(s.log, s.showLeadTab)
	r.GET("/placement/lead-tab", tab)
	r.POST("/placement/lead-tab", tab)
	// The marketplace checks a handler URL with HEAD when it is entered and wants
	// a 200; the page itself needs the portal's POST.
	alive := func(c *gin.Context) { c.Status(http.StatusOK) }
	r.HEAD("/app", alive)
	r.HEAD("/placement/lead-tab", alive)
	r.GET(assets.Prefix+"*file", gin.WrapH(s.cfg.Assets))
	s.registerAPI(r)
}

// pageView is what every page template reads.
type pageView struct {
	Lang       string
	Title      string
	L          assets.Dict
	Nonce      string
	SDKURL     string
	Script     string
	ConfigJSON string
	Body       any
}

// render writes a page with the headers every app page needs: a CSP that allows
// only this page's own scripts (by nonce) and framing only by the portal.
func (s *Settings) render(c *gin.Context, status int, name string, v pageView,
	frameOrigin string) error {
	csp := "default-src 'none'; script-src 'nonce-" + v.Nonce + "'; " +
		"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'self'; " +
		FrameAncestors(frameOrigin)
	h := c.Writer.Header()
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", csp)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Status(status)
	return s.cfg.Assets.Render(c.Writer, name, v)
}

// newNonce returns a fresh CSP nonce.
func newNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// view starts a page view in the language lang.
func (s *Settings) view(lang, script string, config map[string]any, body any) pageView {
	lang = assets.Lang(lang)
	dict := s.cfg.Assets.Dict(lang)
	v := pageView{Lang: lang, Title: dict.T("app.title"), L: dict, Nonce: newNonce(),
		SDKURL: s.cfg.SDKURL, Script: script, Body: body}
	if config != nil {
		raw, _ := json.Marshal(config)
		v.ConfigJSON = string(raw)
	}
	return v
}

// errorView is the body of the error page.
type errorView struct {
	Heading, Message, RequestID string
}

// renderError shows a page that says what went wrong in the user's language. A
// failed frame check gets 403; anything else is logged and gets 500 with the
// request ID.
func (s *Settings) renderError(c *gin.Context, lang string, err error) error {
	ctx := c.Request.Context()
	dict := s.cfg.Assets.Dict(lang)
	status, key := http.StatusInternalServerError, "internal"
	var he *Error
	switch {
	case errors.As(err, &he) && he.Code == "no_access":
		status, key = http.StatusForbidden, "no_access"
	case errors.As(err, &he) && he.Status < 500:
		status, key = http.StatusForbidden, "forbidden"
	}
	if status >= 500 {
		s.log.ErrorContext(ctx, "page failed", append(requestAttrs(c), "error", err)...)
	} else {
		s.log.WarnContext(ctx, "page refused", append(requestAttrs(c), "error", err)...)
	}
	body := errorView{Heading: dict.T("error." + key + "_title"), Message: dict.T("error." + key),
		RequestID: RequestID(ctx)}
	v := s.view(lang, "", nil, body)
	v.SDKURL = ""
	return s.render(c, status, "error", v, "")
}

// verifyFrame checks the portal's POST (or GET) into the frame.
func (s *Settings) verifyFrame(c *gin.Context) (*oauth.FrameUser, error) {
	if err := c.Request.ParseForm(); err != nil {
		return nil, Errorf(http.StatusBadRequest, "bad_form", "The page request is malformed.")
	}
	SetMember(c, c.Request.Form.Get("member_id"))
	u, err := s.cfg.Frames.VerifyFrame(c.Request.Context(), c.Request.URL.Query(), c.Request.PostForm)
	if err != nil {
		return nil, &Error{Status: http.StatusForbidden, Code: "frame_not_verified",
			Message: "Bitrix24 did not confirm this page request.", Err: err}
	}
	return u, nil
}
