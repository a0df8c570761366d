package handlers

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

// requiredScopes are the permissions LeadRouter uses: leads, users' names and
// absence, the lead tab, notifications and working days. Each is met by any of
// its alternatives: people are read with user_brief (which the README asks
// for), user_basic or user.
var requiredScopes = [][]string{{"crm"}, {"user_brief", "user_basic", "user"}, {"placement"},
	{"im"}, {"timeman"}}

// problemView is one thing the administrator should know about the install, with
// what to do about it.
type problemView struct {
	Code     string `json:"code"`
	Severity string `json:"severity"` // "error" or "warning"
	Title    string `json:"title"`
	Action   string `json:"action"`
}

// stateView is what the Installation tab shows.
type stateView struct {
	Status   string        `json:"status"`
	Problems []problemView `json:"problems"`
	Readers  []personView  `json:"readers"`
}

func (s *Settings) getState(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	portal, err := s.cfg.Portals.Portal(ctx, sess.MemberID)
	if errors.Is(err, oauth.ErrUnknownPortal) {
		portal = &oauth.Portal{MemberID: sess.MemberID, Status: "deleted"}
	} else if err != nil {
		return err
	}
	dict := s.cfg.Assets.Dict(sess.Lang)
	out := stateView{Status: portal.Status, Problems: []problemView{}, Readers: []personView{}}
	add := func(code, severity, title, action string) {
		out.Problems = append(out.Problems, problemView{Code: code, Severity: severity,
			Title: title, Action: action})
	}
	switch portal.Status {
	case oauth.StatusBlocked, oauth.StatusNew, "deleted":
		action := dict.T("problem." + portal.Status + "_action")
		if portal.Status == oauth.StatusBlocked && portal.LastError != "" {
			action += " " + fill(dict.T("problem.blocked_reason"), "reason", portal.LastError)
		}
		add(portal.Status, "error", dict.T("problem."+portal.Status), action)
	}
	granted := strings.Split(portal.Scope, ",")
	for _, alternatives := range requiredScopes {
		if portal.Scope == "" || slices.ContainsFunc(alternatives, func(scope string) bool {
			return slices.Contains(granted, scope)
		}) {
			continue
		}
		scope := alternatives[0]
		add("scope", "error", fill(dict.T("problem.scope"), "scope", scope),
			fill(dict.T("problem.scope_action"), "scope", scope))
	}
	if until := s.rateLimitedUntil(c, sess.MemberID); !until.IsZero() {
		add("rate_limited", "warning", dict.T("problem.rate_limited"),
			fill(dict.T("problem.rate_limited_action"), "until", until.UTC().Format("15:04:05 MST")))
	}
	if portal.LastError != "" && portal.Status != oauth.StatusBlocked {
		add("last_error", "warning", dict.T("problem.last_error"), portal.LastError)
	}
	if s.cfg.Health != nil {
		if dead, err := s.cfg.Health.DeadLetters(ctx, sess.MemberID); err == nil && len(dead) > 0 {
			add("dead_letters", "warning",
				fill(dict.T("problem.dead_letters"), "count", strconv.Itoa(len(dead))),
				dict.T("problem.dead_letters_action"))
		}
	}
	if n, err := s.intakeDeadCount(c); err == nil && n.Total > 0 {
		add("intake_dead_letters", "warning",
			fill(dict.T("problem.intake_dead_letters"), "count", strconv.Itoa(n.Total)),
			dict.T("problem.intake_dead_letters_action"))
	}
	ids, err := s.readers(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		names := peopleNames(s.people(ctx, sess.MemberID))
		for _, id := range ids {
			name := names[id]
			if name == "" {
				name = fill(dict.T("people.unknown"), "id", formatID(id))
			}
			out.Readers = append(out.Readers, personView{ID: id, Name: name, Active: true})
		}
	}
	return jsonOK(c, out)
}

// rateLimitedUntil returns until when the portal refuses LeadRouter's requests for
// its rate or a method's time budget, or zero when it does not.
func (s *Settings) rateLimitedUntil(c *gin.Context, memberID string) time.Time {
	vals, err := s.cfg.Redis.HMGet(c.Request.Context(), keyspace.RateLimit(memberID),
		"until", "hold").Result()
	if err != nil {
		return time.Time{}
	}
	var latest time.Time
	for _, v := range vals {
		str, _ := v.(string)
		ms, err := strconv.ParseInt(strings.Split(str, ".")[0], 10, 64)
		if err != nil {
			continue
		}
		if t := time.UnixMilli(ms); t.After(latest) {
			latest = t
		}
	}
	if latest.After(s.now()) {
		return latest
	}
	return time.Time{}
}

// formatID writes a user ID.
func formatID(id int64) string { return strconv.FormatInt(id, 10) }
