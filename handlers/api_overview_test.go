package handlers_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/routing"
)

// overviewSkips is the part of GET /api/overview that says who was skipped and why.
type overviewSkips struct {
	PeopleSkips struct {
		Reasons []struct {
			Reason string `json:"reason"`
			Label  string `json:"label"`
			Today  int    `json:"today"`
			Week   int    `json:"week"`
			People []struct {
				Name string `json:"name"`
				Week int    `json:"week"`
			} `json:"people"`
		} `json:"reasons"`
		Complete bool `json:"complete"`
	} `json:"people_skips"`
}

// summary reads the skips as "reason label: name week, ..." lines.
func (o overviewSkips) summary() []string {
	var out []string
	for _, r := range o.PeopleSkips.Reasons {
		line := fmt.Sprintf("%s %s %d/%d:", r.Reason, r.Label, r.Today, r.Week)
		for _, p := range r.People {
			line += fmt.Sprintf(" %s %d", p.Name, p.Week)
		}
		out = append(out, line)
	}
	return out
}

func TestOverviewPeopleSkips(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	tests := []struct {
		name string
		lang string
		want []string
	}{
		{name: "english", lang: "en", want: []string{
			"absent absent 3/3: Dmitri Ivanov 3",
			"paused paused 3/3: Clara Schmidt 3",
		}},
		{name: "russian", lang: "ru", want: []string{
			"absent отсутствует 3/3: Dmitri Ivanov 3",
			"paused на паузе 3/3: Clara Schmidt 3",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.newPortal(tt.lang)
			away := dmitri
			away.AbsentUntil = time.Now().Add(48 * time.Hour)
			p.UpdateUser(away)
			s.install(p)
			token := s.session(p, anna.ID)

			var ov overviewSkips
			s.call(token, "GET", "/api/overview", nil, &ov)
			if len(ov.PeopleSkips.Reasons) != 0 || !ov.PeopleSkips.Complete {
				t.Errorf("overview before any lead = %+v, want no skips over a complete log", ov)
			}

			settings := salesTeam()
			settings.Teams[0].Members[1].Paused = true // Clara
			settings.Teams[0].Members = append(settings.Teams[0].Members,
				routing.Member{UserID: int64(dmitri.ID), Weight: 1})
			if code := s.call(token, "PUT", "/api/settings",
				map[string]any{"settings": settings}, nil); code != 200 {
				t.Fatalf("save settings = %d", code)
			}
			for i := range 3 {
				p.AddLead(anna.ID, map[string]any{"TITLE": fmt.Sprintf("Lead %d", i),
					"SOURCE_ID": "WEB", "ASSIGNED_BY_ID": anna.ID})
			}
			waitFor(t, "three leads in the overview", func() bool {
				var routed struct {
					Totals struct{ Today int } `json:"totals"`
				}
				s.call(token, "GET", "/api/overview", nil, &routed)
				return routed.Totals.Today == 3
			})
			s.call(token, "GET", "/api/overview", nil, &ov)
			if diff := cmp.Diff(tt.want, ov.summary()); diff != "" {
				t.Errorf("people skipped (-want +got):\n%s", diff)
			}
			if !ov.PeopleSkips.Complete {
				t.Errorf("a log of three decisions is reported incomplete")
			}
		})
	}
}
