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

// People reads portals' people as routing's settings need them (routing.Needs),
// with one REST batch, and keeps each portal's for a short time so that a burst of
// leads costs one read. The pipeline and the intake webhook both use it. It is safe
// for concurrent use.
type People struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex // guards m
	m  map[string]cachedPeople
}

// maxCachedPortals bounds the people cache; it is emptied when full.
const maxCachedPortals = 10_000

// NewPeople returns a reader that reuses a portal's people for ttl (none when ttl
// is not positive); now is the clock (nil: time.Now).
func NewPeople(ttl time.Duration, now func() time.Time) *People {
	if now == nil {
		now = time.Now
	}
	return &People{ttl: ttl, now: now}
}

type cachedPeople struct {
	people map[int64]routing.Person
	needs  routing.Needs
	expiry time.Time
}

// Read returns the people needs names, with the facts it asks for, from the cache
// or with one batch call through client that also carries extra (other look-ups of
// the caller). res holds the batch's answers, nil when nothing was sent. A person
// user.get does not return is left out: routing treats them as unknown. A temporary
// failure of a person's command (a method over its time budget) fails the read
// instead, so that nobody is left out for a refusal that says nothing about them.
// The map returned is shared with the cache and must not be changed.
func (p *People) Read(ctx context.Context, client *bitrix.Client, memberID string,
	needs routing.Needs, extra ...bitrix.Command) (map[int64]routing.Person,
	*bitrix.BatchResult, error) {
	people, cached := p.get(memberID, needs)
	var dirCmds []bitrix.Command
	if !cached {
		dirCmds = directoryCommands(needs)
	}
	cmds := append(dirCmds, extra...)
	if len(cmds) == 0 {
		return people, nil, nil
	}
	res, err := client.BatchAll(ctx, cmds, false)
	if err != nil {
		return nil, nil, fmt.Errorf("read people: %w", err)
	}
	if !cached {
		if err := failedTemporarily(res, dirCmds); err != nil {
			return nil, nil, fmt.Errorf("read people: %w", err)
		}
		people = make(map[int64]routing.Person, len(needs.People))
		for _, id := range needs.People {
			if pr, ok := person(res, id, needs); ok {
				people[id] = pr
			}
		}
		p.put(memberID, needs, people)
	}
	return people, res, nil
}

// failedTemporarily returns the first temporary failure among cmds' answers.
func failedTemporarily(res *bitrix.BatchResult, cmds []bitrix.Command) error {
	for _, c := range cmds {
		if err := res.Err(c.ID); err != nil && bitrix.Temporary(err) {
			return err
		}
	}
	return nil
}

func (p *People) get(memberID string, needs routing.Needs) (map[int64]routing.Person, bool) {
	if len(needs.People) == 0 {
		return map[int64]routing.Person{}, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[memberID]
	if !ok || p.now().After(e.expiry) || !sameNeeds(e.needs, needs) {
		return nil, false
	}
	return e.people, true
}

func (p *People) put(memberID string, needs routing.Needs, people map[int64]routing.Person) {
	if p.ttl <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxCachedPortals {
		p.m = map[string]cachedPeople{}
	}
	p.m[memberID] = cachedPeople{people: people, needs: needs, expiry: p.now().Add(p.ttl)}
}

func sameNeeds(a, b routing.Needs) bool {
	return slices.Equal(a.People, b.People) && a.Absence == b.Absence &&
		a.Timeman == b.Timeman && a.TimeZones == b.TimeZones
}

// directory returns the people the portal's settings name, with the facts the
// settings need.
func (b *batchRun) directory(ctx context.Context) (routing.Directory, error) {
	people, _, err := b.q.people.Read(ctx, b.client, b.memberID, b.settings.Needs())
	if err != nil {
		return routing.Directory{}, err
	}
	return routing.Directory{People: people, Lang: b.lang()}, nil
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
	if needs.Absence && len(needs.People) > 0 {
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
func person(res *bitrix.BatchResult, id int64, needs routing.Needs) (routing.Person, bool) {
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
// settings give returning clients to their owner (clients.go): one batch of
// look-ups for every lead, and one more for the owners when any matched.
func (b *batchRun) existingOwners(ctx context.Context, leads map[int64]routing.Lead) error {
	if !b.settings.Needs().ExistingOwner {
		return nil
	}
	var cmds []bitrix.Command
	looked := map[string]routing.Lead{}
	for id, l := range leads {
		if l.PassTeam != "" {
			continue // a lead passed on stays in its team
		}
		if c := ClientCommands("c"+itoa(id), l); len(c) > 0 {
			cmds = append(cmds, c...)
			looked["c"+itoa(id)] = l
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	found, err := b.client.BatchAll(ctx, cmds, false)
	if err != nil {
		return fmt.Errorf("look up existing clients: %w", err)
	}
	owners, err := ClientOwners(ctx, b.client, found, looked)
	if err != nil {
		return err
	}
	for key, owner := range owners {
		l := looked[key]
		l.ExistingOwner = owner
		leads[l.ID] = l
	}
	return nil
}
