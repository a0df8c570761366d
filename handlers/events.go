package handlers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/queue"
)

// AppEvents handles the application's own lifecycle events (install, update,
// uninstall), verifying them itself. *lifecycle.Lifecycle implements it.
type AppEvents interface {
	HandleAppEvent(ctx context.Context, ev *bitrix.Event) error
}

// EventTokens checks a CRM event's application token against the portal's stored
// one, in constant time. *oauth.Store implements it.
type EventTokens interface {
	CheckApplicationToken(ctx context.Context, memberID, token string) (*oauth.Portal, error)
}

// EventQueue is where checked CRM events go. *queue.Queue implements it.
type EventQueue interface {
	Enqueue(ctx context.Context, memberID string, it queue.Item) error
}

// Events receives the events portals POST to /events. It only checks and stores:
// a CRM event is verified by its application token and appended to the portal's
// stream, and the answer goes out as soon as the event is durable. Bitrix24 never
// sends an event twice, so a valid event is never refused because Redis was briefly
// slow: the append is retried a few times before the answer is a 503.
type Events struct {
	Lifecycle AppEvents
	Tokens    EventTokens
	Queue     EventQueue
	Log       *slog.Logger
	// MaxBody bounds a request body in bytes (default 64 KiB).
	MaxBody int64
	// Attempts and AttemptTimeout bound the appends of one event (3, 500ms).
	Attempts       int
	AttemptTimeout time.Duration
	// TokenCache is how long a checked application token is trusted without asking
	// Tokens again (default 5s; negative: always ask). A portal's burst of events
	// then costs one token check; a token changed by a reinstall or revoked by an
	// uninstall is still accepted for at most this long, and the workers check the
	// portal's status before they act.
	TokenCache time.Duration

	verified sync.Map // sha256(member_id, token) → time.Time the check expires
}

// Register adds POST /events.
func (h *Events) Register(r gin.IRoutes) {
	r.POST("/events", Handle(h.Log, h.receive))
}

// Outcomes of a POST to /events, as counted in queue.EventsIn.
const (
	eventEnqueued    = "enqueued"
	eventLifecycle   = "lifecycle"
	eventIgnored     = "ignored"
	eventMalformed   = "malformed"
	eventOversize    = "oversize"
	eventUnknown     = "unknown_event"
	eventForbidden   = "forbidden"
	eventUnavailable = "unavailable"
	eventFailed      = "failed"
)

// eventsIn holds queue.EventsIn's counter of each outcome, bound once rather than
// looked up by label on every event.
var eventsIn = func() map[string]prometheus.Counter {
	m := map[string]prometheus.Counter{}
	for _, o := range []string{eventEnqueued, eventLifecycle, eventIgnored, eventMalformed,
		eventOversize, eventUnknown, eventForbidden, eventUnavailable, eventFailed} {
		m[o] = queue.EventsIn.WithLabelValues(o)
	}
	return m
}()

func (h *Events) receive(c *gin.Context) error {
	outcome, err := h.handle(c)
	if counter, ok := eventsIn[outcome]; ok {
		counter.Inc()
	} else {
		queue.EventsIn.WithLabelValues(outcome).Inc()
	}
	if err != nil {
		return err
	}
	c.Status(http.StatusOK)
	return nil
}

// handle does the work of receive and names its outcome.
func (h *Events) handle(c *gin.Context) (string, error) {
	form, outcome, err := h.readForm(c)
	if err != nil {
		return outcome, err
	}
	ev, err := bitrix.ParseEvent(form)
	if err != nil {
		return eventMalformed, &Error{Status: http.StatusBadRequest, Code: "malformed_event",
			Message: "The event could not be read (" + err.Error() + ").", Err: err}
	}
	SetMember(c, ev.Auth.MemberID)
	ctx := c.Request.Context()
	switch ev.Name {
	case bitrix.EventAppInstall, bitrix.EventAppUpdate, bitrix.EventAppUninstall:
		if h.Lifecycle == nil {
			return eventUnavailable, unavailable(errors.New("no lifecycle handler configured"))
		}
		if err := h.Lifecycle.HandleAppEvent(ctx, ev); err != nil {
			return h.lifecycleFailed(err)
		}
		if ev.Name == bitrix.EventAppUninstall {
			// The portal's lead events stop being trusted here at once, not when
			// the check of its token runs out.
			h.verified.Delete(tokenKey(ev.Auth))
		}
		return eventLifecycle, nil
	case bitrix.EventLeadAdd, bitrix.EventLeadUpdate, bitrix.EventLeadDelete, bitrix.EventOffline:
	default:
		return eventUnknown, &Error{Status: http.StatusBadRequest, Code: "unknown_event",
			Message: "LeadRouter does not handle this event."}
	}
	if err := h.checkToken(ctx, ev.Auth); err != nil {
		if errors.Is(err, oauth.ErrForbidden) {
			return eventForbidden, &Error{Status: http.StatusForbidden, Code: "forbidden",
				Message: "The application token does not match this portal.", Err: err}
		}
		return eventUnavailable, unavailable(err)
	}
	return h.enqueue(ctx, ev)
}

// checkToken checks the event's application token, trusting a recent successful
// check of the same portal and token.
func (h *Events) checkToken(ctx context.Context, a bitrix.EventAuth) error {
	key := tokenKey(a)
	now := time.Now()
	if exp, ok := h.verified.Load(key); ok && now.Before(exp.(time.Time)) {
		return nil
	}
	if _, err := h.Tokens.CheckApplicationToken(ctx, a.MemberID, a.ApplicationToken); err != nil {
		return err
	}
	ttl := h.TokenCache
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	if ttl > 0 {
		h.verified.Store(key, now.Add(ttl))
	}
	return nil
}

// tokenKey names a portal's application token among the checked ones.
func tokenKey(a bitrix.EventAuth) [sha256.Size]byte {
	return sha256.Sum256([]byte(a.MemberID + "\x00" + a.ApplicationToken))
}

// lifecycleFailed maps a refused application event to its answer.
func (h *Events) lifecycleFailed(err error) (string, error) {
	switch {
	case errors.Is(err, oauth.ErrForbidden):
		return eventForbidden, &Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "The application event could not be verified.", Err: err}
	case errors.Is(err, oauth.ErrBadMemberID):
		return eventMalformed, &Error{Status: http.StatusBadRequest, Code: "malformed_event",
			Message: "The event's member_id is not valid.", Err: err}
	}
	return eventFailed, err
}

// readForm reads the form-encoded body, refusing oversize bodies. It parses the
// body once, where Request.ParseForm would also parse the query and copy both.
func (h *Events) readForm(c *gin.Context) (url.Values, string, error) {
	limit := h.MaxBody
	if limit <= 0 {
		limit = 64 << 10
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, eventOversize, &Error{Status: http.StatusRequestEntityTooLarge,
				Code: "too_large", Message: "The event body is too large.", Err: err}
		}
		return nil, eventMalformed, &Error{Status: http.StatusBadRequest, Code: "malformed_event",
			Message: "The event body could not be read.", Err: err}
	}
	form, err := url.ParseQuery(string(body))
	if ct := c.ContentType(); err == nil && ct != "application/x-www-form-urlencoded" {
		err = fmt.Errorf("content type %q is not a form", ct)
	}
	if err != nil {
		return nil, eventMalformed, &Error{Status: http.StatusBadRequest, Code: "malformed_event",
			Message: "The event body is not a valid form.", Err: err}
	}
	return form, "", nil
}

// enqueue appends a checked CRM event to its portal's stream, retrying briefly.
func (h *Events) enqueue(ctx context.Context, ev *bitrix.Event) (string, error) {
	leadID, ok := ev.LeadID()
	switch {
	case ev.Name == bitrix.EventLeadDelete:
		return eventIgnored, nil // a deleted lead needs no owner
	case ev.Name == bitrix.EventOffline:
		leadID = 0 // "offline events are waiting": the worker reads them
	case !ok:
		return eventMalformed, &Error{Status: http.StatusBadRequest, Code: "malformed_event",
			Message: "The event names no lead (data[FIELDS][ID])."}
	}
	it := queue.Item{Event: ev.Name, LeadID: leadID, At: time.Now()}
	attempts, timeout := max(h.Attempts, 1), h.AttemptTimeout
	if h.Attempts == 0 {
		attempts = 3
	}
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	var err error
	for i := range attempts {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err = h.Queue.Enqueue(actx, ev.Auth.MemberID, it)
		cancel()
		if err == nil {
			return eventEnqueued, nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
	}
	return eventUnavailable, unavailable(err)
}

// unavailable is the 503 that tells the portal's queue the event was not stored.
func unavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Message: "The event could not be stored; please send it again.", Err: err}
}
