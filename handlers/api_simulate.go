package handlers

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/routing"
)

// maxTrialLeads bounds how many leads one trial runs.
const maxTrialLeads = 200

// simulateRequest is the body of POST /api/simulate: the draft settings and either
// typed-in leads (legacy upper-case fields) or how many of the latest real leads
// to take from the portal.
type simulateRequest struct {
	Settings *routing.Settings   `json:"settings"`
	Leads    []map[string]string `json:"leads"`
	Recent   int                 `json:"recent"`
}

// trialView is what the Try it tab shows.
type trialView struct {
	People    []trialPerson `json:"people"`
	Held      int           `json:"held"`
	NotRouted int           `json:"not_routed"`
	Leads     []trialLead   `json:"leads"`
}

type trialPerson struct {
	UserID int64  `json:"user_id"`
	Name   string `json:"name"`
	Count  int    `json:"count"`
}

type trialLead struct {
	LeadID  int64  `json:"lead_id,omitempty"`
	Title   string `json:"title"`
	Outcome string `json:"outcome"`
	Person  string `json:"person,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason"`
}

// postSimulate runs leads through the draft settings of the page. It changes no
// state, so readers may run it too.
func (s *Settings) postSimulate(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Simulator == nil {
		return Errorf(http.StatusServiceUnavailable, "no_simulator", "Trying settings is not available.")
	}
	var req simulateRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Settings == nil {
		return Errorf(http.StatusBadRequest, "no_settings", "The request carries no settings.")
	}
	leads, err := s.trialLeads(c, req)
	if err != nil {
		return err
	}
	dir, err := s.trialDirectory(ctx, sess.MemberID, sess.Lang, req.Settings)
	if err != nil {
		return err
	}
	report, err := s.cfg.Simulator.Simulate(ctx, sess.MemberID, req.Settings, leads, dir, s.now())
	if err != nil {
		return s.settingsError(err, sess.Lang)
	}
	return jsonOK(c, trialReport(report, leads, req.Settings, dir, sess.Lang))
}

// trialLeads returns the typed-in leads, or the portal's latest ones.
func (s *Settings) trialLeads(c *gin.Context, req simulateRequest) ([]routing.Lead, error) {
	if req.Recent > 0 {
		return s.recentLeads(c, min(req.Recent, maxRecentLeads))
	}
	if len(req.Leads) == 0 {
		return nil, Errorf(http.StatusBadRequest, "no_leads", "Add at least one lead to try.")
	}
	if len(req.Leads) > maxTrialLeads {
		return nil, Errorf(http.StatusBadRequest, "too_many_leads", "Try at most 200 leads at once.")
	}
	leads := make([]routing.Lead, 0, len(req.Leads))
	for _, f := range req.Leads {
		lead := routing.Lead{Fields: map[string]string{}}
		for k, v := range f {
			k = strings.ToUpper(strings.TrimSpace(k))
			switch k {
			case "PHONE":
				lead.Phones = append(lead.Phones, v)
			case "EMAIL":
				lead.Emails = append(lead.Emails, v)
			default:
				lead.Fields[k] = v
			}
		}
		leads = append(leads, lead)
	}
	return leads, nil
}

// maxRecentLeads is how many of the portal's latest leads a trial takes at most:
// ten pages of crm.lead.list, read in one batch.
const maxRecentLeads = 500

// recentLeads reads the portal's latest n leads, newest first, with one REST call.
func (s *Settings) recentLeads(c *gin.Context, n int) ([]routing.Lead, error) {
	sess := session(c)
	const page = 50
	var cmds []bitrix.Command
	for start := 0; start < n; start += page {
		cmds = append(cmds, bitrix.Command{ID: "p" + strconv.Itoa(start/page),
			Method: "crm.lead.list", Params: map[string]any{
				"order":  map[string]string{"ID": "DESC"},
				"select": []string{"*", "UF_*", "PHONE", "EMAIL"}, "start": start}})
	}
	res, err := s.cfg.Portals.Client(sess.MemberID).BatchAll(c.Request.Context(), cmds, false)
	if err != nil {
		return nil, err
	}
	leads := make([]routing.Lead, 0, n)
	seen := map[int64]bool{}
	for _, cmd := range cmds {
		var rows []map[string]json.RawMessage
		if err := res.Decode(cmd.ID, &rows); err != nil {
			return nil, err
		}
		for _, r := range rows {
			// A lead created between two pages shifts them: skip the repeat.
			if l := leadFromRow(r); !seen[l.ID] && len(leads) < n {
				seen[l.ID] = true
				leads = append(leads, l)
			}
		}
		if len(rows) < page {
			break
		}
	}
	return leads, nil
}

// leadFromRow reads a crm.lead.list row into a routing lead.
func leadFromRow(r map[string]json.RawMessage) routing.Lead {
	lead := routing.Lead{Fields: map[string]string{}}
	for k, raw := range r {
		switch k {
		case "PHONE", "EMAIL":
			var multi []struct {
				Value string `json:"VALUE"`
			}
			json.Unmarshal(raw, &multi)
			for _, m := range multi {
				if k == "PHONE" {
					lead.Phones = append(lead.Phones, m.Value)
				} else {
					lead.Emails = append(lead.Emails, m.Value)
				}
			}
		default:
			var str string
			if json.Unmarshal(raw, &str) == nil {
				lead.Fields[k] = str
			}
		}
	}
	var id bitrix.ID
	json.Unmarshal(r["ID"], &id)
	lead.ID = int64(id)
	var assigned, created bitrix.ID
	json.Unmarshal(r["ASSIGNED_BY_ID"], &assigned)
	json.Unmarshal(r["CREATED_BY_ID"], &created)
	lead.AssignedByID, lead.CreatedByID = int64(assigned), int64(created)
	return lead
}

// trialReport writes a simulation for the page.
func trialReport(r *routing.Report, leads []routing.Lead, settings *routing.Settings,
	dir routing.Directory, lang string) trialView {
	out := trialView{Held: r.Held, NotRouted: r.NotRouted, People: []trialPerson{},
		Leads: []trialLead{}}
	name := func(id int64) string {
		if p, ok := dir.People[id]; ok && p.Name != "" {
			return p.Name
		}
		return "#" + formatID(id)
	}
	for id, n := range r.PerPerson {
		out.People = append(out.People, trialPerson{UserID: id, Name: name(id), Count: n})
	}
	sort.Slice(out.People, func(i, j int) bool { return out.People[i].Count > out.People[j].Count })
	rules := map[string]string{}
	for _, rule := range settings.Rules {
		rules[rule.ID] = rule.Name
	}
	for i, d := range r.Decisions {
		tl := trialLead{Outcome: string(d.Outcome), Rule: rules[d.RuleID], Reason: d.Trace.Text(lang)}
		if i < len(leads) {
			tl.LeadID = leads[i].ID
			tl.Title = leads[i].Fields["TITLE"]
		}
		if d.Outcome == routing.Assigned {
			tl.Person = name(d.UserID)
		}
		out.Leads = append(out.Leads, tl)
	}
	return out
}
