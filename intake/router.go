package intake

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/queue"
	"github.com/leadrouter/leadrouter/routing"
)

// EngineRouter is the Router of a deployment: routing's engine decides from the
// portal's current settings and people, and a created lead's decision is recorded
// where the pipeline looks for it, so its ONCRMLEADADD is settled as already routed.
type EngineRouter struct {
	Engine *routing.Engine
	// Clients gives a portal's REST client (oauth.Store.Client).
	Clients func(memberID string) *bitrix.Client
	RDB     redis.UniversalClient
	// Lang gives the portal's language for the decision's reason ("en" when nil).
	Lang func(ctx context.Context, memberID string) string
	// Now returns the current time (nil: time.Now).
	Now func() time.Time
	// DirectoryTTL is how long a portal's people, as read from the portal, are
	// reused for further leads (0: DefaultDirectoryTTL; negative: not at all).
	DirectoryTTL time.Duration

	mu     sync.Mutex // guards people
	people map[string]cachedPeople
}

// routeRecord is what Route hands to Created through Decision.Record.
type routeRecord struct {
	Outcome routing.Outcome `json:"outcome"`
	Person  string          `json:"person,omitempty"`
	TeamID  string          `json:"team,omitempty"`
}

// pipelineRecord is the pipeline's per-lead record in keyspace.Routed, written as
// the pipeline writes its own once it has written the owner ("w", "wa") and noted
// the decision ("n"): the lead was born with its owner, the reason is on its
// timeline, and the portal told the owner (REGISTER_SONET_EVENT). The pipeline then
// settles the lead's events as already routed (or, for updates just after, as
// echoes).
//
// TODO(#7): use an exported recorder of package queue instead of its wire format.
type pipelineRecord struct {
	UserID    int64     `json:"u"`
	Person    string    `json:"p,omitempty"`
	RuleID    string    `json:"r,omitempty"`
	TeamID    string    `json:"t,omitempty"`
	Trace     string    `json:"x,omitempty"`
	At        time.Time `json:"at"`
	Written   bool      `json:"w,omitempty"`
	Noted     bool      `json:"n,omitempty"`
	WrittenAt time.Time `json:"wa,omitzero"`
}

// Route decides the owner of c. The lead has no ID yet, so it is decided under a
// negative ID derived from the intake ID: deciding the same post again returns the
// same owner without spending a turn.
func (r *EngineRouter) Route(ctx context.Context, memberID string, c Candidate) (Decision, error) {
	settings, _, err := r.Engine.Settings(ctx, memberID)
	if err != nil {
		return Decision{}, fmt.Errorf("load routing settings: %w", err)
	}
	lead := routing.Lead{ID: pendingLeadID(c.IntakeID), Fields: c.Fields, Phones: c.Phones,
		Emails: c.Emails}
	needs := settings.Needs()
	dir := routing.Directory{People: map[int64]routing.Person{}, Lang: r.lang(ctx, memberID)}
	if err := r.readFacts(ctx, memberID, needs, &dir, &lead); err != nil {
		return Decision{}, err
	}
	d, err := r.Engine.Decide(ctx, memberID, lead, dir, r.now())
	if err != nil {
		return Decision{}, fmt.Errorf("decide: %w", err)
	}
	rec := routeRecord{Outcome: d.Outcome, TeamID: d.TeamID}
	out := Decision{Rule: d.RuleID, Reason: d.Trace.Text(dir.Lang), StandIn: lead.ID}
	if d.Outcome == routing.Assigned {
		out.Owner = d.UserID
		rec.Person = dir.People[d.UserID].Name
	}
	if out.Rule == "" {
		out.Rule = string(d.Outcome)
	}
	out.Record, err = json.Marshal(rec)
	return out, err
}

// adoptScript gives the created lead the routing decision made under its stand-in
// ID, so that deciding the lead again returns the same owner without spending a
// turn, and releasing it counts the owner down once.
//
// KEYS[1] the stand-in's decision, KEYS[2] the lead's. ARGV[1] the TTL in ms to use
// when the stand-in's has none. Returns 1 when copied.
var adoptScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
	return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
	ttl = tonumber(ARGV[1])
end
redis.call('SET', KEYS[2], v, 'PX', ttl, 'NX')
redis.call('DEL', KEYS[1])
return 1
`)

// Created records the decision for the created lead. A lead routing held or left
// alone gets no record: the pipeline decides its ONCRMLEADADD as for any new lead,
// and holds it or leaves it as its settings say.
func (r *EngineRouter) Created(ctx context.Context, memberID string, leadID int64,
	d Decision) error {
	if d.Owner == 0 {
		return nil
	}
	if d.StandIn != 0 {
		keys := []string{keyspace.RoutingDecision(memberID, d.StandIn),
			keyspace.RoutingDecision(memberID, leadID)}
		err := adoptScript.Run(ctx, r.RDB, keys, routing.DefaultDecisionTTL.Milliseconds()).Err()
		if err != nil {
			return fmt.Errorf("move decision to lead %d: %w", leadID, err)
		}
	}
	var rec routeRecord
	if len(d.Record) > 0 {
		if err := json.Unmarshal(d.Record, &rec); err != nil {
			return fmt.Errorf("decode route record: %w", err)
		}
	}
	now := r.now()
	raw, err := json.Marshal(pipelineRecord{UserID: d.Owner, Person: rec.Person, RuleID: d.Rule,
		TeamID: rec.TeamID, Trace: d.Reason, At: now, Written: true, Noted: true,
		WrittenAt: now})
	if err != nil {
		return err
	}
	entry, err := json.Marshal(queue.LogEntry{Time: now, LeadID: leadID,
		Outcome: queue.OutcomeAssigned, UserID: d.Owner, Person: rec.Person, RuleID: d.Rule,
		TeamID: rec.TeamID, Reason: d.Reason})
	if err != nil {
		return err
	}
	keys := []string{keyspace.Routed(memberID), keyspace.AssignmentLog(memberID),
		keyspace.PipelineStats(memberID, now.UTC().Format(time.DateOnly))}
	err = recordScript.Run(ctx, r.RDB, keys, leadID, raw, entry,
		"routed:"+strconv.FormatInt(d.Owner, 10), int64(statsTTL/time.Second)).Err()
	if err != nil {
		return fmt.Errorf("record intake lead %d: %w", leadID, err)
	}
	return nil
}

// statsTTL is how long the pipeline keeps a day's counters.
const statsTTL = 9 * 24 * time.Hour

// recordScript writes the pipeline's record of a created lead once, with its line
// in the assignment log and its count in the day's statistics.
//
// KEYS[1] keyspace.Routed, KEYS[2] keyspace.AssignmentLog, KEYS[3] the day's
// keyspace.PipelineStats. ARGV[1] lead ID, ARGV[2] record, ARGV[3] log entry,
// ARGV[4] stats field, ARGV[5] stats TTL in seconds. Returns 0 when the lead had a
// record already.
var recordScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
	return 0
end
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
return 1
`)

// readFacts reads, in one batch, the people the settings name (with the facts they
// need) unless they were read within DirectoryTTL, and the owner of an existing
// client with the lead's phone or e-mail.
//
// TODO(#7): the pipeline reads people the same way (queue/directory.go); use one
// exported reader of package queue once it has one, instead of this twin.
func (r *EngineRouter) readFacts(ctx context.Context, memberID string, needs routing.Needs,
	dir *routing.Directory, lead *routing.Lead) error {
	people, cached := r.cachedPeople(memberID, needs)
	var cmds []bitrix.Command
	if !cached {
		cmds = peopleCommands(needs)
	}
	if filter := clientFilter(lead); needs.ExistingOwner && filter != nil {
		cmds = append(cmds, bitrix.Command{ID: "client", Method: "crm.contact.list",
			Params: map[string]any{"filter": filter, "select": []string{"ID", "ASSIGNED_BY_ID"},
				"order": map[string]string{"ID": "ASC"}}})
	}
	if len(cmds) > 0 {
		res, err := r.Clients(memberID).BatchAll(ctx, cmds, false)
		if err != nil {
			return fmt.Errorf("read people: %w", err)
		}
		if !cached {
			people = map[int64]routing.Person{}
			for _, id := range needs.People {
				if p, ok := person(res, id, needs); ok {
					people[id] = p
				}
			}
			r.cachePeople(memberID, needs, people)
		}
		var clients []struct {
			Owner bitrix.ID `json:"ASSIGNED_BY_ID"`
		}
		if res.Decode("client", &clients) == nil && len(clients) > 0 {
			lead.ExistingOwner = int64(clients[0].Owner)
		}
	}
	maps.Copy(dir.People, people)
	return nil
}

func peopleCommands(needs routing.Needs) []bitrix.Command {
	var cmds []bitrix.Command
	for _, id := range needs.People {
		uid := strconv.FormatInt(id, 10)
		cmds = append(cmds, bitrix.Command{ID: "u" + uid, Method: "user.get",
			Params: map[string]any{"ID": id}})
		if needs.Timeman {
			cmds = append(cmds, bitrix.Command{ID: "tm" + uid, Method: "timeman.status",
				Params: map[string]any{"USER_ID": id}})
		}
	}
	if needs.Absence && len(needs.People) > 0 {
		cmds = append(cmds, bitrix.Command{ID: "absence", Method: "im.user.list.get",
			Params: map[string]any{"ID": needs.People, "RESULT_TYPE": "array"}})
	}
	return cmds
}

// cachedPeople returns the portal's people as last read for the same needs, when
// that was within DirectoryTTL.
func (r *EngineRouter) cachedPeople(memberID string,
	needs routing.Needs) (map[int64]routing.Person, bool) {
	if len(needs.People) == 0 {
		return nil, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.people[memberID]
	if !ok || r.now().After(e.expiry) || !slices.Equal(e.needs.People, needs.People) ||
		e.needs.Absence != needs.Absence || e.needs.Timeman != needs.Timeman {
		return nil, false
	}
	return e.people, true
}

func (r *EngineRouter) cachePeople(memberID string, needs routing.Needs,
	people map[int64]routing.Person) {
	ttl := r.DirectoryTTL
	if ttl == 0 {
		ttl = DefaultDirectoryTTL
	}
	if ttl < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.people == nil || len(r.people) >= maxCachedPortals {
		r.people = map[string]cachedPeople{}
	}
	r.people[memberID] = cachedPeople{people: people, needs: needs, expiry: r.now().Add(ttl)}
}

// cachedPeople is one portal's people as read at some time.
type cachedPeople struct {
	people map[int64]routing.Person
	needs  routing.Needs
	expiry time.Time
}

// maxCachedPortals bounds the people cache; it is emptied when full.
const maxCachedPortals = 10_000

// DefaultDirectoryTTL is how long an EngineRouter reuses a portal's people.
const DefaultDirectoryTTL = 30 * time.Second

func clientFilter(lead *routing.Lead) map[string]any {
	switch {
	case len(lead.Phones) > 0:
		return map[string]any{"PHONE": lead.Phones[0]}
	case len(lead.Emails) > 0:
		return map[string]any{"EMAIL": lead.Emails[0]}
	}
	return nil
}

// person reads one person from the batch answers; one user.get did not return is
// left out, and routing skips them as unknown.
func person(res *bitrix.BatchResult, id int64, needs routing.Needs) (routing.Person, bool) {
	uid := strconv.FormatInt(id, 10)
	var rows []struct {
		Active   bitrix.Bool `json:"ACTIVE"`
		Name     bitrix.Text `json:"NAME"`
		LastName bitrix.Text `json:"LAST_NAME"`
		TimeZone bitrix.Text `json:"TIME_ZONE"`
	}
	if res.Decode("u"+uid, &rows) != nil || len(rows) == 0 {
		return routing.Person{}, false
	}
	row := rows[0]
	name := string(row.Name)
	if row.LastName != "" {
		name += " " + string(row.LastName)
	}
	p := routing.Person{ID: id, Name: name, Active: bool(row.Active), TimeZone: string(row.TimeZone)}
	if needs.Timeman {
		var st struct {
			Status bitrix.Text `json:"STATUS"`
		}
		if res.Decode("tm"+uid, &st) == nil {
			p.Timeman = string(st.Status)
		}
	}
	if needs.Absence {
		p.AbsentUntil = absentUntil(res, id)
	}
	return p, true
}

// absentUntil reads a person's absence end from im.user.list.get: a date or false.
func absentUntil(res *bitrix.BatchResult, id int64) time.Time {
	var rows []struct {
		ID     bitrix.ID       `json:"id"`
		Absent json.RawMessage `json:"absent"`
	}
	if res.Decode("absence", &rows) != nil {
		return time.Time{}
	}
	for _, row := range rows {
		var s string
		if int64(row.ID) != id || json.Unmarshal(row.Absent, &s) != nil {
			continue
		}
		for _, layout := range []string{time.RFC3339, time.DateOnly} {
			if t, err := time.Parse(layout, s); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// pendingLeadID is the negative stand-in ID a post's lead is decided under before
// it exists.
func pendingLeadID(intakeID string) int64 {
	h := sha256.Sum256([]byte(intakeID))
	return -int64(binary.BigEndian.Uint64(h[:8])>>1 | 1)
}

func (r *EngineRouter) lang(ctx context.Context, memberID string) string {
	if r.Lang == nil {
		return "en"
	}
	return r.Lang(ctx, memberID)
}

func (r *EngineRouter) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}
