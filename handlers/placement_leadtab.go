package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/queue"
)

// leadTabView is the body of the CRM_LEAD_DETAIL_TAB page.
type leadTabView struct {
	LeadID  int64
	Entries []leadTabEntry
}

// leadTabEntry is one step of a lead's routing history.
type leadTabEntry struct {
	Kind     string // the outcome: assigned, held, not_routed, or moved
	When     string
	Headline string
	Rule     string
	Reason   string
	Skipped  []string
	// From and By name the previous owner and who made a move by hand.
	From, By string

	at    time.Time
	owner int64 // the owner after this step; 0 when it gave none
}

// showLeadTab serves the lead card's tab: who routed the lead, when, by which rule,
// why others were skipped, and every later decision about it. Anybody the portal
// lets open the lead card may see it; it shows nothing of other leads.
func (s *Settings) showLeadTab(c *gin.Context) error {
	lang := assets.Lang(c.Query("LANG"))
	user, err := s.verifyFrame(c)
	if err != nil {
		return s.renderError(c, lang, err)
	}
	lang = assets.Lang(user.Lang)
	leadID := placementLeadID(user.PlacementOptions)
	if leadID <= 0 {
		return s.renderError(c, lang, Errorf(400, "no_lead", "The placement names no lead."))
	}
	lead, err := s.readLead(c, user.MemberID, leadID)
	if err != nil {
		return s.renderError(c, lang, err)
	}
	body := leadTabView{LeadID: leadID}
	if s.cfg.Log != nil {
		ctx := c.Request.Context()
		history, err := s.cfg.Log.LeadHistory(ctx, user.MemberID, leadID)
		if err != nil {
			return s.renderError(c, lang, err)
		}
		moves, err := s.cfg.Log.LeadMoves(ctx, user.MemberID, leadID)
		if err != nil {
			return s.renderError(c, lang, err)
		}
		names := peopleNames(s.people(ctx, user.MemberID))
		body.Entries = s.leadTabEntries(history, s.ruleNames(ctx, user.MemberID), lang)
		body.Entries = s.movesByHand(body.Entries, moves, names, lang)
		body.Entries = s.laterMove(body.Entries, lead, names, lang)
	}
	config := map[string]any{"lang": lang}
	return s.render(c, 200, "leadtab", s.view(lang, "leadtab.js", config, body), user.Origin)
}

// leadNow is the lead as the portal has it now.
type leadNow struct {
	AssignedByID bitrix.ID `json:"ASSIGNED_BY_ID"`
	DateModify   string    `json:"DATE_MODIFY"`
}

// readLead reads the lead with the viewer's own token, so that the tab shows
// nobody the routing of a lead whose card they could not open (PLACEMENT_OPTIONS
// comes from the browser), and so that a later change of owner shows.
func (s *Settings) readLead(c *gin.Context, memberID string, leadID int64) (leadNow, error) {
	ctx := c.Request.Context()
	var lead leadNow
	portal, err := s.cfg.Portals.Portal(ctx, memberID)
	if err != nil {
		return lead, err
	}
	auth := viewerAuth{creds: bitrix.Credentials{Endpoint: portal.ClientEndpoint,
		AccessToken: c.Request.Form.Get("AUTH_ID")}}
	client := bitrix.NewClient(memberID, auth, bitrix.Options{Logger: s.log,
		Timeout: 10 * time.Second, MaxRetries: -1})
	err = client.Call(ctx, "crm.lead.get", map[string]any{"id": leadID}, &lead)
	switch {
	case errors.Is(err, bitrix.ErrAccessDenied), errors.Is(err, bitrix.ErrNotFound):
		return lead, &Error{Status: http.StatusForbidden, Code: "no_lead_access",
			Message: "You cannot open this lead.", Err: err}
	case err != nil:
		return lead, fmt.Errorf("read lead %d of portal %s as its viewer: %w",
			leadID, memberID, err)
	}
	return lead, nil
}

// movesByHand adds the changes of owner that people made after LeadRouter's
// decisions, as the pipeline saw them, in time order with the decisions.
func (s *Settings) movesByHand(entries []leadTabEntry, moves []queue.Move,
	names map[int64]string, lang string) []leadTabEntry {
	if len(moves) == 0 {
		return entries
	}
	dict := s.cfg.Assets.Dict(lang)
	for _, m := range moves {
		e := handMove(dict, names, m.From, m.To)
		e.When, e.at, e.owner = tabTime(m.At), m.At, m.To
		if m.By != 0 {
			e.By = fill(dict.T("leadtab.moved_by"), "person", nameOf(names, m.By))
		}
		entries = append(entries, e)
	}
	slices.SortStableFunc(entries, func(a, b leadTabEntry) int { return a.at.Compare(b.at) })
	return entries
}

// laterMove adds the lead's present owner when somebody gave it to another person
// after the last owner the timeline shows: a move the pipeline has not seen (made
// soon after LeadRouter's own write, or after the lead stopped being watched).
func (s *Settings) laterMove(entries []leadTabEntry, lead leadNow, names map[int64]string,
	lang string) []leadTabEntry {
	var last int64
	for _, e := range entries {
		if e.owner != 0 {
			last = e.owner
		}
	}
	owner := int64(lead.AssignedByID)
	if last == 0 || owner == 0 || owner == last {
		return entries
	}
	dict := s.cfg.Assets.Dict(lang)
	when := lead.DateModify
	if t, err := time.Parse(time.RFC3339, lead.DateModify); err == nil {
		when = tabTime(t)
	}
	e := handMove(dict, names, last, owner)
	e.When = when
	return append(entries, e)
}

// handMove is the entry of a move by hand of the lead from one person to another.
func handMove(dict assets.Dict, names map[int64]string, from, to int64) leadTabEntry {
	return leadTabEntry{Kind: "moved",
		Headline: fill(dict.T("leadtab.moved"), "person", nameOf(names, to)) +
			" (" + dict.T("leadtab.by_hand") + ")",
		From: fill(dict.T("leadtab.moved_from"), "person", nameOf(names, from))}
}

// nameOf is a person's name, or their ID when the portal's people do not hold them.
func nameOf(names map[int64]string, id int64) string {
	if n := names[id]; n != "" {
		return n
	}
	return "#" + formatID(id)
}

// tabTime is how the lead tab writes a moment.
func tabTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("02.01.2006 15:04 MST")
}

// viewerAuth is the page viewer's own token, used once and never refreshed: an
// expired one means the page must be opened again.
type viewerAuth struct{ creds bitrix.Credentials }

func (a viewerAuth) Credentials(context.Context) (bitrix.Credentials, error) { return a.creds, nil }

func (a viewerAuth) Refresh(context.Context, bitrix.Credentials) (bitrix.Credentials, error) {
	return bitrix.Credentials{}, bitrix.ErrExpiredToken
}

func (a viewerAuth) Moved(context.Context, string) error { return nil }

// placementLeadID reads the lead ID from PLACEMENT_OPTIONS, where the portal writes
// it as a string.
func placementLeadID(opts map[string]any) int64 {
	switch v := opts["ID"].(type) {
	case string:
		id, _ := strconv.ParseInt(v, 10, 64)
		return id
	case float64:
		return int64(v)
	}
	return 0
}

// leadTabEntries turns the lead's log entries, oldest first, into timeline steps.
func (s *Settings) leadTabEntries(history []queue.LogEntry, rules map[string]string,
	lang string) []leadTabEntry {
	dict := s.cfg.Assets.Dict(lang)
	out := make([]leadTabEntry, 0, len(history))
	var lastOwner int64
	for i := len(history) - 1; i >= 0; i-- {
		e := history[i]
		entry := leadTabEntry{Kind: e.Outcome, When: tabTime(e.Time), at: e.Time, Rule: e.RuleID}
		if name := rules[e.RuleID]; name != "" {
			entry.Rule = name
		}
		main, skipped := splitReason(e.Reason)
		entry.Reason = main
		entry.Skipped = skipped
		person := e.Person
		if person == "" && e.UserID != 0 {
			person = fmt.Sprintf("#%d", e.UserID)
		}
		switch e.Outcome {
		case queue.OutcomeAssigned:
			key := "leadtab.assigned"
			if lastOwner != 0 && lastOwner != e.UserID {
				key, entry.Kind = "leadtab.moved", "moved"
			}
			entry.Headline = strings.ReplaceAll(dict.T(key), "{person}", person)
			entry.owner = e.UserID
			lastOwner = e.UserID
		case queue.OutcomeHeld:
			entry.Headline = dict.T("leadtab.held")
		default:
			entry.Headline = dict.T("leadtab.not_routed")
		}
		out = append(out, entry)
	}
	return out
}

// splitReason separates the list of skipped people from a decision's one-line
// reason, which ends with them: "…; skipped: name — reason, name — reason."
func splitReason(reason string) (main string, skipped []string) {
	i := strings.LastIndex(reason, "; ")
	if i < 0 || !strings.Contains(reason[i:], " — ") {
		return reason, nil
	}
	main, tail := reason[:i]+".", strings.TrimSuffix(reason[i+2:], ".")
	if _, list, ok := strings.Cut(tail, ": "); ok {
		tail = list
	}
	for _, part := range strings.Split(tail, ", ") {
		if p := strings.TrimSpace(part); p != "" {
			skipped = append(skipped, p)
		}
	}
	return main, skipped
}

// ruleNames maps the rule IDs of the portal's current settings to their names; a
// rule removed since keeps showing its ID.
func (s *Settings) ruleNames(ctx context.Context, memberID string) map[string]string {
	names := map[string]string{}
	settings, _, err := s.cfg.Engine.Settings(ctx, memberID)
	if err != nil || settings == nil {
		return names
	}
	for _, r := range settings.Rules {
		names[r.ID] = r.Name
	}
	return names
}
