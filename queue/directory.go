package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/routing"
)

// directoryCache keeps each portal's people for a short time, so that a burst of
// leads costs one read of them.
type directoryCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]cachedDirectory
}

type cachedDirectory struct {
	dir    routing.Directory
	needs  routing.Needs
	expiry time.Time
}

func (c *directoryCache) get(memberID string, needs routing.Needs) (routing.Directory, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[memberID]
	if !ok || c.now().After(e.expiry) || !sameNeeds(e.needs, needs) {
		return routing.Directory{}, false
	}
	return e.dir, true
}

func (c *directoryCache) put(memberID string, needs routing.Needs, dir routing.Directory) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedDirectory{}
	}
	c.m[memberID] = cachedDirectory{dir: dir, needs: needs, expiry: c.now().Add(c.ttl)}
}

func sameNeeds(a, b routing.Needs) bool {
	return slices.Equal(a.People, b.People) && a.Absence == b.Absence &&
		a.Timeman == b.Timeman && a.TimeZones == b.TimeZones
}

// directory returns the people the portal's settings name, with the facts the
// settings need, from the cache or with one batch call.
func (b *batchRun) directory(ctx context.Context) (routing.Directory, error) {
	needs := b.settings.Needs()
	if dir, ok := b.q.dirs.get(b.memberID, needs); ok {
		return dir, nil
	}
	dir := routing.Directory{People: map[int64]routing.Person{}, Lang: b.lang()}
	if len(needs.People) == 0 {
		b.q.dirs.put(b.memberID, needs, dir)
		return dir, nil
	}
	res, err := b.client.BatchAll(ctx, directoryCommands(needs), false)
	if err != nil {
		return dir, fmt.Errorf("read people: %w", err)
	}
	for _, id := range needs.People {
		p, ok := b.person(res, id, needs)
		if ok {
			dir.People[id] = p
		}
	}
	b.q.dirs.put(b.memberID, needs, dir)
	return dir, nil
}

// directoryCommands reads each person with user.get, and their absence and
// working day when the settings look at them.
func directoryCommands(needs routing.Needs) []bitrix.Command {
	var cmds []bitrix.Command
	for _, id := range needs.People {
		cmds = append(cmds, bitrix.Command{ID: "u" + itoa(id), Method: "user.get",
			Params: map[string]any{"ID": id}})
		if needs.Timeman {
			cmds = append(cmds, bitrix.Command{ID: "tm" + itoa(id), Method: "timeman.status",
				Params: map[string]any{"USER_ID": id}})
		}
	}
	if needs.Absence {
		cmds = append(cmds, bitrix.Command{ID: "absence", Method: "im.user.list.get",
			Params: map[string]any{"ID": needs.People, "RESULT_TYPE": "array"}})
	}
	return cmds
}

// userRow is the part of a user.get row the pipeline reads.
type userRow struct {
	ID       bitrix.ID   `json:"ID"`
	Active   bitrix.Bool `json:"ACTIVE"`
	Name     bitrix.Text `json:"NAME"`
	LastName bitrix.Text `json:"LAST_NAME"`
	TimeZone bitrix.Text `json:"TIME_ZONE"`
}

// person assembles one person from the batch answers. A person user.get does not
// return is left out: routing treats them as unknown and skips them.
func (b *batchRun) person(res *bitrix.BatchResult, id int64,
	needs routing.Needs) (routing.Person, bool) {
	var rows []userRow
	if err := res.Decode("u"+itoa(id), &rows); err != nil || len(rows) == 0 {
		return routing.Person{}, false
	}
	row := rows[0]
	name := string(row.Name)
	if row.LastName != "" {
		name += " " + string(row.LastName)
	}
	p := routing.Person{ID: id, Name: name, Active: bool(row.Active),
		TimeZone: string(row.TimeZone)}
	if needs.Timeman {
		var st struct {
			Status bitrix.Text `json:"STATUS"`
		}
		if res.Decode("tm"+itoa(id), &st) == nil {
			p.Timeman = string(st.Status)
		}
	}
	if needs.Absence {
		p.AbsentUntil = absentUntil(res, id)
	}
	return p, true
}

// absentUntil reads a person's absence end from im.user.list.get: a date, or false.
func absentUntil(res *bitrix.BatchResult, id int64) time.Time {
	var rows []struct {
		ID     bitrix.ID       `json:"id"`
		Absent json.RawMessage `json:"absent"`
	}
	if res.Decode("absence", &rows) != nil {
		return time.Time{}
	}
	for _, r := range rows {
		if int64(r.ID) != id {
			continue
		}
		var s string
		if json.Unmarshal(r.Absent, &s) != nil {
			return time.Time{}
		}
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// existingOwners fills ExistingOwner of leads with a phone or e-mail, when the
// settings give returning clients to their owner: one contact look-up per lead, all
// in one batch.
func (b *batchRun) existingOwners(ctx context.Context, leads map[int64]routing.Lead) error {
	if !b.settings.Needs().ExistingOwner {
		return nil
	}
	var cmds []bitrix.Command
	for id, l := range leads {
		filter := map[string]any{}
		switch {
		case len(l.Phones) > 0:
			filter["PHONE"] = l.Phones[0]
		case len(l.Emails) > 0:
			filter["EMAIL"] = l.Emails[0]
		default:
			continue
		}
		cmds = append(cmds, bitrix.Command{ID: "c" + itoa(id), Method: "crm.contact.list",
			Params: map[string]any{"filter": filter, "select": []string{"ID", "ASSIGNED_BY_ID"},
				"order": map[string]string{"ID": "ASC"}}})
	}
	if len(cmds) == 0 {
		return nil
	}
	res, err := b.client.BatchAll(ctx, cmds, false)
	if err != nil {
		return fmt.Errorf("look up existing clients: %w", err)
	}
	for id, l := range leads {
		var rows []struct {
			Owner bitrix.ID `json:"ASSIGNED_BY_ID"`
		}
		if res.Decode("c"+itoa(id), &rows) == nil && len(rows) > 0 {
			l.ExistingOwner = int64(rows[0].Owner)
			leads[id] = l
		}
	}
	return nil
}
