package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/routing"
)

// trialDirectory returns the people a trial of draft decides among, with the facts
// the draft looks at — absence, the working day, time zones — read the way the
// pipeline reads them, with the install's client, in one batch. Names and active
// flags come from the portal's user list the page already keeps.
//
// TODO(#6): the pipeline reads the same facts with its own code in
// queue/directory.go; use its reader once queue exports one.
func (s *Settings) trialDirectory(ctx context.Context, memberID, lang string,
	draft *routing.Settings) (routing.Directory, error) {
	dir := routing.Directory{People: map[int64]routing.Person{}, Lang: lang}
	people, _ := s.people(ctx, memberID)
	for _, p := range people {
		dir.People[p.ID] = routing.Person{ID: p.ID, Name: p.Name, Active: p.Active}
	}
	needs := draft.Needs()
	cmds := factCommands(needs)
	if len(cmds) == 0 {
		return dir, nil
	}
	res, err := s.cfg.Portals.Client(memberID).BatchAll(ctx, cmds, false)
	if err != nil {
		return dir, fmt.Errorf("read people's availability for a trial: %w", err)
	}
	absent := absences(res)
	for _, id := range needs.People {
		p, ok := dir.People[id]
		if !ok {
			continue // not among the portal's users: routing skips them as unknown
		}
		var st struct {
			Status bitrix.Text `json:"STATUS"`
		}
		if needs.Timeman && res.Decode("tm"+formatID(id), &st) == nil {
			p.Timeman = string(st.Status)
		}
		var rows []struct {
			TimeZone bitrix.Text `json:"TIME_ZONE"`
		}
		if needs.TimeZones && res.Decode("u"+formatID(id), &rows) == nil && len(rows) > 0 {
			p.TimeZone = string(rows[0].TimeZone)
		}
		p.AbsentUntil = absent[id]
		dir.People[id] = p
	}
	return dir, nil
}

// factCommands asks for what needs names beyond the user list: each person's
// working day and time zone, and everybody's absence in one command.
func factCommands(needs routing.Needs) []bitrix.Command {
	var cmds []bitrix.Command
	for _, id := range needs.People {
		if needs.Timeman {
			cmds = append(cmds, bitrix.Command{ID: "tm" + formatID(id), Method: "timeman.status",
				Params: map[string]any{"USER_ID": id}})
		}
		if needs.TimeZones {
			cmds = append(cmds, bitrix.Command{ID: "u" + formatID(id), Method: "user.get",
				Params: map[string]any{"ID": id}})
		}
	}
	if needs.Absence && len(needs.People) > 0 {
		cmds = append(cmds, bitrix.Command{ID: "absence", Method: "im.user.list.get",
			Params: map[string]any{"ID": needs.People, "RESULT_TYPE": "array"}})
	}
	return cmds
}

// absences reads im.user.list.get's answer: per person a date the absence ends,
// or false.
func absences(res *bitrix.BatchResult) map[int64]time.Time {
	out := map[int64]time.Time{}
	var rows []struct {
		ID     bitrix.ID       `json:"id"`
		Absent json.RawMessage `json:"absent"`
	}
	if res.Decode("absence", &rows) != nil {
		return out
	}
	for _, r := range rows {
		var s string
		if json.Unmarshal(r.Absent, &s) != nil {
			continue
		}
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				out[int64(r.ID)] = t
				break
			}
		}
	}
	return out
}
