package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/routing"
)

// Decider is the routing engine as the pipeline uses it. *routing.Engine
// implements it.
type Decider interface {
	Settings(ctx context.Context, memberID string) (*routing.Settings, int, error)
	Decide(ctx context.Context, memberID string, lead routing.Lead, dir routing.Directory,
		now time.Time) (routing.Decision, error)
}

// Portals are the installed portals and their REST clients. *oauth.Store
// implements it.
type Portals interface {
	ActivePortals(ctx context.Context) ([]string, error)
	Portal(ctx context.Context, memberID string) (*oauth.Portal, error)
	Client(memberID string) *bitrix.Client
}

// Reasons a lead event is settled without a new decision, as counted in the stats.
const (
	reasonEcho          = "own_write"      // the update our own write caused
	reasonAlreadyRouted = "already_routed" // the lead has its owner from us
	reasonNotRouted     = "not_routed"     // the settings do not route this lead
	reasonPortalUnknown = "portal_unknown" // the portal's record is gone
	reasonAwaitIntake   = "await_intake"   // intake created the lead and records it
	reasonLeadDeleted   = "lead_deleted"   // a person deleted the lead meanwhile
	reasonMethodBlocked = "method_blocked" // a method the lead needs is over its time budget
)

// record is the pipeline's per-lead record in keyspace.Routed.
type record struct {
	UserID int64     `json:"u"`
	Person string    `json:"p,omitempty"`
	RuleID string    `json:"r,omitempty"`
	TeamID string    `json:"t,omitempty"`
	Trace  string    `json:"x,omitempty"`
	At     time.Time `json:"at"`
	// Written says the owner is on the portal; Noted that the owner was notified
	// and the trace is on the lead's timeline.
	Written bool `json:"w,omitempty"`
	Noted   bool `json:"n,omitempty"`
	// WrittenAt is when the app wrote the owner: the ONCRMLEADUPDATE that follows
	// within Config.OwnWriteTTL is the echo of that write.
	WrittenAt time.Time `json:"wa,omitzero"`
	// Round counts the re-routes of the lead (routing.Lead.Round).
	Round int `json:"g,omitempty"`
	// Moved is the lead's MOVED_TIME when it was decided, and Status its STATUS_ID as
	// last seen by the pipeline: together they tell a person's move of the lead
	// from the app's own write (empty for records intake wrote).
	Moved  string `json:"mv,omitempty"`
	Status string `json:"s,omitempty"`
	// Skipped are the people the decision passed over, for the log entry.
	Skipped []Skip `json:"sk,omitempty"`
	// Owner is the lead's responsible as last seen by the pipeline when a person
	// gave the lead to somebody else; 0 while it is UserID.
	Owner int64 `json:"o,omitempty"`
	// Moves are the later changes of owner the pipeline saw, oldest first, the
	// last maxMoves of them; a re-route's record carries them over.
	Moves []Move `json:"m,omitempty"`
	// Missed are the people who let the lead's response deadline pass, in order;
	// a lead passed on never goes back to them (deadline.go).
	Missed []int64 `json:"dm,omitempty"`
	// DueStatus is the lead's STATUS_ID when it was assigned by a team with a
	// response deadline: a change of it means the owner took the lead up.
	DueStatus string `json:"ds,omitempty"`
	// DueCreated says the lead was created with its owner, by a team with a response
	// deadline, in the portal's default status, which the app does not know: a change
	// of status since the lead's creation means the owner took it up.
	DueCreated bool `json:"dc,omitempty"`
}

// maxMoves is how many later moves of a lead its record keeps.
const maxMoves = 20

// Move is a change of a routed lead's owner that somebody other than LeadRouter
// made, as the pipeline saw it on an update of the lead.
type Move struct {
	// At is the lead's DATE_MODIFY on the update that showed the move.
	At   time.Time `json:"at"`
	From int64     `json:"f"`
	To   int64     `json:"t"`
	// By is the lead's MODIFY_BY_ID on that update; 0 when the portal did not say.
	By int64 `json:"b,omitempty"`
}

// owner is the lead's responsible as last seen.
func (r *record) owner() int64 {
	if r.Owner != 0 {
		return r.Owner
	}
	return r.UserID
}

// batchRun is one turn's view of a portal.
type batchRun struct {
	q        *Queue
	memberID string
	client   *bitrix.Client
	portal   *oauth.Portal
	settings *routing.Settings
	now      time.Time
	pause    time.Time
	records  map[int64]*record
}

// process decides and writes back the units of one turn, setting each unit's
// result. It returns the time before which the portal must not be called again.
func (q *Queue) process(ctx context.Context, memberID string, units []*unit) time.Time {
	b := &batchRun{q: q, memberID: memberID, now: q.cfg.Now(), records: map[int64]*record{}}
	if err := b.load(ctx, units); err != nil {
		b.failAll(units, err)
		return b.pause
	}
	toRead := b.triage(units)
	leads := b.read(ctx, toRead)
	var toWrite []*unit
	for _, u := range units {
		if u.res.kind != settled || u.log != nil || b.records[u.leadID] == nil {
			continue
		}
		if rec := b.records[u.leadID]; !rec.Written || !rec.Noted {
			toWrite = append(toWrite, u)
		}
	}
	toWrite = append(toWrite, b.decide(ctx, toRead, leads)...)
	b.write(ctx, toWrite)
	return b.pause
}

// load fetches the portal, its settings and the records of the turn's leads.
func (b *batchRun) load(ctx context.Context, units []*unit) error {
	p, err := b.q.portals.Portal(ctx, b.memberID)
	if err != nil {
		return fmt.Errorf("load portal: %w", err)
	}
	if p.Status == "blocked" || p.Status == "deleted" {
		return fmt.Errorf("%w: portal is %s", errPortalGone, p.Status)
	}
	b.portal = p
	b.client = b.q.portals.Client(b.memberID)
	if b.settings, _, err = b.q.decider.Settings(ctx, b.memberID); err != nil {
		return fmt.Errorf("load settings: %w", err)
	}
	fields := make([]string, len(units))
	for i, u := range units {
		fields[i] = itoa(u.leadID)
	}
	vals, err := b.q.rdb.HMGet(ctx, keyspace.Routed(b.memberID), fields...).Result()
	if err != nil {
		return fmt.Errorf("read lead records: %w", err)
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var r record
		if json.Unmarshal([]byte(s), &r) == nil {
			b.records[units[i].leadID] = &r
		}
	}
	return nil
}

// errPortalGone marks a portal that is blocked or uninstalled.
var errPortalGone = errors.New("portal unavailable")

// triage settles what needs no REST call and returns the units whose lead must be
// read and decided. A recorded decision not yet written (or noted) stays settled
// with its record, to be written again. An update of a lead the app has routed is
// not routed again unless the settings re-route moved leads: then the lead is read
// to see whether a person moved it (recheck); otherwise an update shortly after the
// app's own write is that write's echo.
func (b *batchRun) triage(units []*unit) []*unit {
	var read []*unit
	reroute := b.settings.Reroute.Enabled()
	for _, u := range units {
		rec := b.records[u.leadID]
		switch {
		case u.isCheck():
			if b.dueCheck(u, rec) {
				read = append(read, u)
			}
		case rec == nil:
			read = append(read, u)
		case !rec.Written || !rec.Noted:
			u.res = result{kind: settled}
		case reroute && (u.event == bitrix.EventLeadUpdate || u.held),
			b.watchesMoves(u, rec):
			u.recheck = true
			read = append(read, u)
		default:
			u.res = result{kind: settled, reason: b.routedReason(u, rec)}
		}
	}
	return read
}

// watchesMoves reports whether an update of a routed lead is read for a change of
// owner: it is not the echo of the app's own write and the decision is younger
// than Config.MoveWindow.
func (b *batchRun) watchesMoves(u *unit, rec *record) bool {
	return u.event == bitrix.EventLeadUpdate && b.q.cfg.MoveWindow > 0 &&
		b.now.Sub(rec.At) < b.q.cfg.MoveWindow &&
		b.now.Sub(rec.WrittenAt) >= b.q.cfg.OwnWriteTTL
}

// routedReason says why an event of a lead the app has routed changes nothing.
func (b *batchRun) routedReason(u *unit, rec *record) string {
	if u.event == bitrix.EventLeadUpdate && b.now.Sub(rec.WrittenAt) < b.q.cfg.OwnWriteTTL {
		return reasonEcho
	}
	return reasonAlreadyRouted
}

// failAll gives every unit the outcome of a failure that concerns the whole turn.
func (b *batchRun) failAll(units []*unit, err error) {
	res := b.classify(err)
	for _, u := range units {
		u.res = res
	}
}

// classify turns a failure into a unit result, pausing the portal for limits and
// temporary failures. A method over its time budget pauses only the leads that
// need it, unless it is the batch call that every lead needs.
func (b *batchRun) classify(err error) result {
	var be *bitrix.Error
	code := ""
	if errors.As(err, &be) {
		code = be.Code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return result{kind: retry, reason: "interrupted", err: err}
	case errors.Is(err, bitrix.ErrOperationLimit) && blocksOneMethod(be):
		// The portal's other methods go on, and so does the portal's other work:
		// the lead waits with the held leads, and costs no attempt.
		return result{kind: held, reason: reasonMethodBlocked, code: code, err: err,
			until: b.resumeAt(be)}
	case errors.Is(err, bitrix.ErrQueryLimit), errors.Is(err, bitrix.ErrOperationLimit):
		b.pauseUntil(b.resumeAt(be))
		mPaused.Inc()
		return result{kind: retry, reason: "portal rate limit", code: code, err: err, free: true}
	case errors.Is(err, bitrix.ErrNotFound):
		// Somebody deleted the lead: there is nothing to route and nothing to show
		// the administrator as a failure.
		return result{kind: settled, reason: reasonLeadDeleted, err: err}
	case errors.Is(err, oauth.ErrUnknownPortal):
		// The portal's record is gone (uninstalled with its data): nobody is left to
		// show a dead letter to, so the work is dropped.
		return result{kind: settled, reason: reasonPortalUnknown, err: err}
	case errors.Is(err, errPortalGone):
		return result{kind: dead, reason: "portal not available: " + err.Error(), code: code, err: err}
	case bitrix.Temporary(err) || be == nil:
		b.pauseUntil(b.now.Add(b.q.cfg.RetryBase))
		return result{kind: retry, reason: failureText(err), code: code, err: err}
	default:
		return result{kind: dead, reason: failureText(err), code: code, err: err}
	}
}

// failureText says in a few words what went wrong, for the dead-letter list.
func failureText(err error) string {
	switch {
	case errors.Is(err, bitrix.ErrNotFound):
		return "lead not found (deleted)"
	case errors.Is(err, bitrix.ErrAccessDenied), errors.Is(err, bitrix.ErrInsufficientScope):
		return "access denied"
	case errors.Is(err, bitrix.ErrPortalDeleted):
		return "portal deleted"
	case errors.Is(err, bitrix.ErrPaymentRequired):
		return "application not paid"
	case errors.Is(err, bitrix.ErrOverload):
		return "portal REST API blocked"
	case errors.Is(err, bitrix.ErrInvalidToken), errors.Is(err, bitrix.ErrNoAuth):
		return "application tokens not accepted"
	}
	return err.Error()
}

// blocksOneMethod reports whether an OPERATION_TIME_LIMIT refused one method, not
// the batch call that all of a turn's work goes through.
func blocksOneMethod(be *bitrix.Error) bool {
	return be != nil && be.Method != "" && be.Method != "batch"
}

// resumeAt is when work refused for a limit is tried again: the method's reset, but
// not before Config.RetryBase has passed.
func (b *batchRun) resumeAt(be *bitrix.Error) time.Time {
	until := b.now.Add(b.q.cfg.RetryBase)
	if be != nil && be.ResetAt.After(until) {
		until = be.ResetAt
	}
	return until
}

func (b *batchRun) pauseUntil(t time.Time) {
	if t.After(b.pause) {
		b.pause = t
	}
}

// backoff is the pause before retry number attempt+1, with jitter.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.cfg.RetryBase << min(attempt, 20)
	if d <= 0 || d > q.cfg.RetryMax {
		d = q.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// read fetches the units' leads in batches of up to 50 crm.lead.get commands.
// Units whose lead cannot be read get their result; the map holds the others.
func (b *batchRun) read(ctx context.Context, units []*unit) map[int64]map[string]json.RawMessage {
	leads := map[int64]map[string]json.RawMessage{}
	if len(units) == 0 {
		return leads
	}
	cmds := make([]bitrix.Command, len(units))
	for i, u := range units {
		cmds[i] = bitrix.Command{ID: "l" + itoa(u.leadID), Method: "crm.lead.get",
			Params: map[string]any{"id": u.leadID}}
	}
	res, err := b.batch(ctx, cmds)
	if err != nil {
		b.failAll(units, err)
		return leads
	}
	for _, u := range units {
		id := "l" + itoa(u.leadID)
		if err := res.Err(id); err != nil {
			u.res = b.classify(err)
			continue
		}
		var lead map[string]json.RawMessage
		if err := json.Unmarshal(res.Result[id], &lead); err != nil || lead == nil {
			u.res = result{kind: dead, reason: "unreadable lead", err: err}
			continue
		}
		leads[u.leadID] = lead
	}
	return leads
}

// batch sends cmds in as few batch calls as possible.
func (b *batchRun) batch(ctx context.Context, cmds []bitrix.Command) (*bitrix.BatchResult, error) {
	return b.client.BatchAll(ctx, cmds, false)
}

// lang is the language of texts written to the portal.
func (b *batchRun) lang() string {
	if b.portal != nil && strings.HasPrefix(b.portal.Lang, "ru") {
		return "ru"
	}
	return "en"
}
