package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
		body.Entries = s.leadTabEntries(history, s.ruleNames(ctx, user.MemberID), lang)
		body.Entries = s.laterMove(ctx, user.MemberID, body.Entries, history, lead, lang)
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

// laterMove adds the lead's present owner when somebody gave it to another person
// after LeadRouter's last assignment.
func (s *Settings) laterMove(ctx context.Context, memberID string, entries []leadTabEntry,
	history []queue.LogEntry, lead leadNow, lang string) []leadTabEntry {
	var routed int64
	for _, e := range history { // newest first
		if e.Outcome == queue.OutcomeAssigned {
			routed = e.UserID
			break
		}
	}
	owner := int64(lead.AssignedByID)
	if routed == 0 || owner == 0 || owner == routed {
		return entries
	}
	dict := s.cfg.Assets.Dict(lang)
	name := peopleNames(s.people(ctx, memberID))[owner]
	if name == "" {
		name = "#" + formatID(owner)
	}
	when := lead.DateModify
	if t, err := time.Parse(time.RFC3339, lead.DateModify); err == nil {
		when = t.UTC().Format("02.01.2006 15:04 MST")
	}
	headline := fill(dict.T("leadtab.moved"), "person", name) + " (" + dict.T("leadtab.by_hand") + ")"
	return append(entries, leadTabEntry{Kind: "moved", When: when, Headline: headline})
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
	loc := time.UTC
	out := make([]leadTabEntry, 0, len(history))
	var lastOwner int64
	for i := len(history) - 1; i >= 0; i-- {
		e := history[i]
		entry := leadTabEntry{Kind: e.Outcome, When: e.Time.In(loc).Format("02.01.2006 15:04 MST"),
			Rule: e.RuleID}
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
