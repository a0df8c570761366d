package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/placement"
)

// EventBinding is one event handler LeadRouter keeps bound on every portal.
type EventBinding struct {
	Event   string
	Handler string // "" for an offline binding
	Offline bool
}

func (b EventBinding) String() string {
	if b.Offline {
		return b.Event + " (offline queue)"
	}
	return b.Event + " → " + b.Handler
}

// Events returns the event handlers LeadRouter binds: the lead events online, a
// second, offline binding of ONCRMLEADADD for catching up after downtime, and the
// application's own events.
func (l *Lifecycle) Events() []EventBinding {
	h := l.cfg.PublicURL + "/events"
	return []EventBinding{
		{Event: bitrix.EventAppInstall, Handler: h},
		{Event: bitrix.EventAppUpdate, Handler: h},
		{Event: bitrix.EventAppUninstall, Handler: h},
		{Event: bitrix.EventLeadAdd, Handler: h},
		{Event: bitrix.EventLeadUpdate, Handler: h},
		{Event: bitrix.EventLeadAdd, Offline: true},
	}
}

// PlacementBinding is one placement LeadRouter keeps bound.
type PlacementBinding struct {
	Placement string
	Handler   string
}

func (b PlacementBinding) String() string { return b.Placement + " → " + b.Handler }

// BindReport says what Bind found and did.
type BindReport struct {
	Events     []EventBinding
	Placements []PlacementBinding
	Added      int // bindings created now; the rest were in place
}

type boundEvent struct {
	Event   string    `json:"event"`
	Handler string    `json:"handler"`
	Offline bitrix.ID `json:"offline"`
}

type boundPlacement struct {
	Placement string `json:"placement"`
	Handler   string `json:"handler"`
}

// Bind makes sure every event handler and placement LeadRouter needs is bound on
// the portal memberID: it reads event.get and placement.get (one batch) and binds
// only what is missing (one more batch). A bind the portal refuses as already
// bound counts as done. It records the version bound for on the portal.
func (l *Lifecycle) Bind(ctx context.Context, memberID string) (*BindReport, error) {
	p, err := l.store.Portal(ctx, memberID)
	if err != nil {
		return nil, err
	}
	c := l.store.Client(memberID)
	res, err := c.Batch(ctx, []bitrix.Command{
		{ID: "events", Method: "event.get"},
		{ID: "placements", Method: "placement.get"},
	}, false)
	if err != nil {
		return nil, fmt.Errorf("read bindings of portal %s: %w", memberID, err)
	}
	var events []boundEvent
	var places []boundPlacement
	if err := res.Decode("events", &events); err != nil {
		return nil, fmt.Errorf("read event bindings of portal %s: %w", memberID, err)
	}
	if err := res.Decode("placements", &places); err != nil {
		return nil, fmt.Errorf("read placement bindings of portal %s: %w", memberID, err)
	}
	report := &BindReport{}
	cmds := l.missingEvents(events, report)
	cmds = append(cmds, l.missingPlacements(places, report)...)
	report.Added = len(cmds)
	if len(cmds) > 0 {
		res, err := c.Batch(ctx, cmds, false)
		if err != nil {
			return nil, fmt.Errorf("bind on portal %s: %w", memberID, err)
		}
		var failed []string
		for _, cmd := range cmds {
			if err := res.Err(cmd.ID); err != nil && !alreadyBound(err) {
				failed = append(failed, fmt.Sprintf("%s: %v", cmd.ID, err))
			}
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("bind on portal %s: %s", memberID, strings.Join(failed, "; "))
		}
	}
	if err := l.store.MarkBound(ctx, memberID, p.Version); err != nil {
		return nil, err
	}
	l.log.InfoContext(ctx, "portal bindings checked", "member_id", memberID, "added", report.Added)
	return report, nil
}

// missingEvents lists the wanted events in report and returns event.bind
// commands for those not bound yet.
func (l *Lifecycle) missingEvents(have []boundEvent, report *BindReport) []bitrix.Command {
	var cmds []bitrix.Command
	for i, want := range l.Events() {
		report.Events = append(report.Events, want)
		found := false
		for _, h := range have {
			offline := h.Offline != 0
			if strings.EqualFold(h.Event, want.Event) && offline == want.Offline &&
				(offline || h.Handler == want.Handler) {
				found = true
				break
			}
		}
		if found {
			continue
		}
		params := map[string]any{"event": want.Event, "event_type": "online", "handler": want.Handler}
		if want.Offline {
			params = map[string]any{"event": want.Event, "event_type": "offline"}
		}
		cmds = append(cmds, bitrix.Command{ID: "event" + strconv.Itoa(i), Method: "event.bind",
			Params: params})
	}
	return cmds
}

// missingPlacements does for placements what missingEvents does for events.
func (l *Lifecycle) missingPlacements(have []boundPlacement, report *BindReport) []bitrix.Command {
	var cmds []bitrix.Command
	for i, want := range placement.Bound() {
		handler := l.cfg.PublicURL + want.Path
		report.Placements = append(report.Placements,
			PlacementBinding{Placement: want.Code, Handler: handler})
		found := false
		for _, h := range have {
			if strings.EqualFold(h.Placement, want.Code) && h.Handler == handler {
				found = true
				break
			}
		}
		if found {
			continue
		}
		en := want.Title("en")
		langAll := map[string]any{}
		for lang, t := range want.Titles {
			langAll[lang] = map[string]any{"TITLE": t.Title, "DESCRIPTION": t.Description}
		}
		cmds = append(cmds, bitrix.Command{
			ID:     "placement" + strconv.Itoa(i),
			Method: "placement.bind",
			Params: map[string]any{
				"PLACEMENT":   want.Code,
				"HANDLER":     handler,
				"TITLE":       en.Title,
				"DESCRIPTION": en.Description,
				"LANG_ALL":    langAll,
			},
		})
	}
	return cmds
}

// alreadyBound reports whether a bind was refused because the binding exists.
func alreadyBound(err error) bool {
	var be *bitrix.Error
	if !errors.As(err, &be) {
		return false
	}
	d := strings.ToLower(be.Description)
	return strings.Contains(d, "already binded") || strings.Contains(d, "already bound")
}

// bindSoon binds the portal's events and placements now, within BindTimeout; when
// that fails it queues the portal for the sweep and records why on the portal.
func (l *Lifecycle) bindSoon(ctx context.Context, memberID string) {
	if err := l.rdb.ZAdd(ctx, keyspace.PendingBinds(),
		redis.Z{Score: float64(time.Now().Unix()), Member: memberID}).Err(); err != nil {
		l.log.WarnContext(ctx, "rebind not queued", "member_id", memberID, "error", err)
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.BindTimeout)
	defer cancel()
	if _, err := l.Bind(bctx, memberID); err != nil {
		l.log.WarnContext(ctx, "bind failed; the sweep will retry", "member_id", memberID, "error", err)
		_ = l.store.SetLastError(ctx, memberID, msgBindFailed)
		return
	}
	if err := l.rdb.ZRem(ctx, keyspace.PendingBinds(), memberID).Err(); err != nil {
		l.log.WarnContext(ctx, "rebind not dequeued", "member_id", memberID, "error", err)
	}
}

// Messages for the settings page.
const (
	msgBindFailed = "LeadRouter could not register its event handlers on the portal yet; " +
		"it keeps trying. New leads are caught up once it succeeds."
	msgNoAppToken = "Bitrix24 has not confirmed the installation to LeadRouter, so lead " +
		"events are not accepted yet. Reinstalling the application fixes this."
	msgNotFinished = "The installation was not finished in Bitrix24. Open LeadRouter from " +
		"the applications menu as an administrator to finish it."
)
