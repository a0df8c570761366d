package handlers

import (
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/queue"
)

// logLimit is how many log lines one search answers.
const logLimit = 200

// logView is one line of the assignment log.
type logView struct {
	At      string `json:"at"`
	LeadID  int64  `json:"lead_id"`
	Outcome string `json:"outcome"`
	UserID  int64  `json:"user_id,omitempty"`
	Person  string `json:"person,omitempty"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason"`
}

func (s *Settings) getLog(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Log == nil {
		return Errorf(http.StatusServiceUnavailable, "no_log", "The assignment log is not available.")
	}
	q := c.Query("q")
	if utf8.RuneCountInString(q) > 200 {
		return Errorf(http.StatusBadRequest, "long_query", "The search is too long.")
	}
	entries, err := s.cfg.Log.Log(ctx, sess.MemberID, q, logLimit)
	if err != nil {
		return err
	}
	rules := s.ruleNames(ctx, sess.MemberID)
	out := make([]logView, 0, len(entries))
	for _, e := range entries {
		out = append(out, logLine(e, rules))
	}
	return jsonOK(c, out)
}

// logLine shows a log entry with the rule's current name.
func logLine(e queue.LogEntry, rules map[string]string) logView {
	rule := rules[e.RuleID]
	if rule == "" {
		rule = e.RuleID
	}
	return logView{At: e.Time.UTC().Format("2006-01-02T15:04:05Z"), LeadID: e.LeadID,
		Outcome: e.Outcome, UserID: e.UserID, Person: e.Person, Rule: rule, Reason: e.Reason}
}
