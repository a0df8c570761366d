package handlers

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// healthyQueueAge is how long the oldest waiting event may wait before the queue
// is shown as falling behind.
const healthyQueueAgeSeconds = 60

// overviewView is what the Overview tab draws.
type overviewView struct {
	Totals      totalsView       `json:"totals"`
	Queue       queueView        `json:"queue"`
	People      []personLoadView `json:"people"`
	Skips       []skipView       `json:"skips"`
	PeopleSkips peopleSkipsView  `json:"people_skips"`
	DeadLetters []deadView       `json:"dead_letters"`
	IntakeDead  intakeDeadCount  `json:"intake_dead"`
}

// intakeDeadCount is how many intake posts could not become leads; Available is
// false when intake webhooks are off.
type intakeDeadCount struct {
	Available bool `json:"available"`
	Total     int  `json:"total"`
}

type totalsView struct {
	Today int `json:"today"`
	Week  int `json:"week"`
}

type queueView struct {
	Pending          int   `json:"pending"`
	Held             int   `json:"held"`
	OldestAgeSeconds int64 `json:"oldest_age_seconds"`
	Healthy          bool  `json:"healthy"`
}

// personLoadView is one person's bar in the chart: leads today and this week,
// their share of the week, and the share their weight promises.
type personLoadView struct {
	UserID     int64   `json:"user_id"`
	Name       string  `json:"name"`
	Today      int     `json:"today"`
	Week       int     `json:"week"`
	Share      float64 `json:"share"`
	IdealShare float64 `json:"ideal_share"`
}

type skipView struct {
	Reason string `json:"reason"`
	Label  string `json:"label"`
	Count  int    `json:"count"`
}

// peopleSkipsView is why decisions passed people over: one group per reason, with
// the people it concerned. Complete is false when the log no longer reaches back a
// full week, so the week's counts are a lower bound.
type peopleSkipsView struct {
	Reasons  []skipReasonView `json:"reasons"`
	Complete bool             `json:"complete"`
}

type skipReasonView struct {
	Reason string              `json:"reason"`
	Label  string              `json:"label"`
	Today  int                 `json:"today"`
	Week   int                 `json:"week"`
	People []skippedPersonView `json:"people"`
}

type skippedPersonView struct {
	UserID int64  `json:"user_id"`
	Name   string `json:"name"`
	Today  int    `json:"today"`
	Week   int    `json:"week"`
}

type deadView struct {
	ID     string `json:"id"`
	LeadID int64  `json:"lead_id"`
	Error  string `json:"error"`
	At     string `json:"at"`
}

func (s *Settings) getOverview(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Health == nil {
		return Errorf(http.StatusServiceUnavailable, "no_pipeline", "The overview is not available.")
	}
	stats, err := s.cfg.Health.Stats(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	dead, err := s.cfg.Health.DeadLetters(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	settings, _, err := s.cfg.Engine.Settings(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	names := peopleNames(s.people(ctx, sess.MemberID))
	dict := s.cfg.Assets.Dict(sess.Lang)
	ideal := idealShares(settings)

	out := overviewView{People: []personLoadView{}, Skips: []skipView{}, DeadLetters: []deadView{}}
	age := int64(stats.QueueAge.Seconds())
	out.Queue = queueView{Pending: stats.QueueDepth, Held: stats.HeldNow, OldestAgeSeconds: age,
		Healthy: age < healthyQueueAgeSeconds}
	seen := map[int64]bool{}
	for id := range ideal {
		seen[id] = true
	}
	for id := range stats.RoutedWeek {
		seen[id] = true
	}
	for id := range seen {
		if id == 0 {
			continue
		}
		name := names[id]
		if name == "" {
			name = fill(dict.T("people.unknown"), "id", formatID(id))
		}
		p := personLoadView{UserID: id, Name: name, Today: stats.RoutedToday[id],
			Week: stats.RoutedWeek[id], Share: stats.ShareWeek[id], IdealShare: ideal[id]}
		out.Totals.Today += p.Today
		out.Totals.Week += p.Week
		out.People = append(out.People, p)
	}
	sort.Slice(out.People, func(i, j int) bool {
		a, b := out.People[i], out.People[j]
		if a.Week != b.Week {
			return a.Week > b.Week
		}
		return a.Name < b.Name
	})
	for reason, n := range stats.SkipsWeek {
		label := dict.T("skip." + reason)
		if strings.HasPrefix(label, "skip.") {
			label = reason
		}
		out.Skips = append(out.Skips, skipView{Reason: reason, Label: label, Count: n})
	}
	sort.Slice(out.Skips, func(i, j int) bool { return out.Skips[i].Count > out.Skips[j].Count })
	if out.PeopleSkips, err = s.peopleSkips(c, names, dict); err != nil {
		return err
	}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, deadView{ID: d.ID, LeadID: d.LeadID,
			Error: d.Reason, At: d.Time.UTC().Format("2006-01-02T15:04:05Z")})
	}
	if out.IntakeDead, err = s.intakeDeadCount(c); err != nil {
		return err
	}
	return jsonOK(c, out)
}

// intakeDeadCount counts the portal's intake posts whose lead could not be created.
func (s *Settings) intakeDeadCount(c *gin.Context) (intakeDeadCount, error) {
	if s.cfg.IntakePosts == nil {
		return intakeDeadCount{}, nil
	}
	_, total, err := s.cfg.IntakePosts.DeadLetters(c.Request.Context(), session(c).MemberID, 1)
	if err != nil {
		return intakeDeadCount{}, err
	}
	return intakeDeadCount{Available: true, Total: total}, nil
}

// idealShares is each person's share of leads by the teams they are in: a
// person's weight over the sum of all weights, counting weights only in teams whose
// strategy follows them (weighted, random) and 1 elsewhere.
func idealShares(s *routing.Settings) map[int64]float64 {
	weights := map[int64]float64{}
	var total float64
	if s == nil {
		return weights
	}
	for _, t := range s.Teams {
		weighted := t.Strategy == routing.Weighted || t.Strategy == routing.Random
		for _, m := range t.Members {
			if m.Paused {
				continue
			}
			w := float64(m.Weight)
			if w <= 0 || !weighted {
				w = 1
			}
			weights[m.UserID] += w
			total += w
		}
	}
	for id, w := range weights {
		weights[id] = w / total
	}
	return weights
}

func (s *Settings) postRetry(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	if s.cfg.Health == nil {
		return Errorf(http.StatusServiceUnavailable, "no_pipeline", "Retrying is not available.")
	}
	id := c.Param("id")
	if id == "" || len(id) > 100 {
		return Errorf(http.StatusBadRequest, "bad_id", "The failed lead is not named.")
	}
	n, err := s.cfg.Health.Retry(ctx, sess.MemberID, id)
	if err != nil && !errors.Is(err, queue.ErrNoDeadLetter) {
		return err
	}
	if n == 0 {
		return Errorf(http.StatusNotFound, "no_dead_letter", "This failed lead is no longer waiting.")
	}
	s.log.InfoContext(ctx, "dead letter retried", "member_id", sess.MemberID,
		"user_id", sess.UserID, "dead_letter", id)
	return jsonOK(c, gin.H{"retried": n})
}

// peopleSkips groups the pipeline's per-person skips by reason, in the order of
// the busiest reason first, with people's names.
func (s *Settings) peopleSkips(c *gin.Context, names map[int64]string,
	dict assets.Dict) (peopleSkipsView, error) {
	skips, complete, err := s.cfg.Health.PeopleSkips(c.Request.Context(), session(c).MemberID)
	if err != nil {
		return peopleSkipsView{}, err
	}
	out := peopleSkipsView{Reasons: []skipReasonView{}, Complete: complete}
	index := map[string]int{}
	for _, sk := range skips {
		i, ok := index[sk.Reason]
		if !ok {
			i = len(out.Reasons)
			index[sk.Reason] = i
			out.Reasons = append(out.Reasons, skipReasonView{Reason: sk.Reason,
				Label: personSkipLabel(dict, sk.Reason), People: []skippedPersonView{}})
		}
		r := &out.Reasons[i]
		name := names[sk.UserID]
		if name == "" {
			name = fill(dict.T("people.unknown"), "id", formatID(sk.UserID))
		}
		r.Today += sk.Today
		r.Week += sk.Week
		r.People = append(r.People, skippedPersonView{UserID: sk.UserID, Name: name,
			Today: sk.Today, Week: sk.Week})
	}
	sort.SliceStable(out.Reasons, func(i, j int) bool { return out.Reasons[i].Week > out.Reasons[j].Week })
	return out, nil
}

// personSkipLabel names a routing skip reason in the page's language, or shows the
// code of a reason the page has no words for yet.
func personSkipLabel(dict assets.Dict, reason string) string {
	label := dict.T("reason." + reason)
	if strings.HasPrefix(label, "reason.") {
		return reason
	}
	return label
}
