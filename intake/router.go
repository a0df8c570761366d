package intake

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
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

	once   sync.Once
	people *queue.People // the pipeline's reader, built on first use
}

// routeRecord is what Route hands to Created through Decision.Record.
type routeRecord struct {
	Outcome routing.Outcome `json:"outcome"`
	Person  string          `json:"person,omitempty"`
	TeamID  string          `json:"team,omitempty"`
	// Deadline is the team's response deadline in minutes, 0 when it has none.
	Deadline int `json:"deadline,omitempty"`
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
		if dl := settings.TeamDeadline(d.TeamID); dl != nil {
			rec.Deadline = dl.Minutes
		}
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

// Created records the decision for the created lead, with the check of its response
// deadline when the team that chose its owner has one; intake sends no STATUS_ID, so
// the lead is in the portal's default status. A lead routing held or left alone gets
// no record: the pipeline decides its ONCRMLEADADD as for any new lead, and holds it
// or leaves it as its settings say.
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
	_, err := queue.RecordCreated(ctx, r.RDB, memberID, queue.Created{LeadID: leadID,
		UserID: d.Owner, Person: rec.Person, RuleID: d.Rule, TeamID: rec.TeamID,
		Trace: d.Reason, At: r.now(), Deadline: time.Duration(rec.Deadline) * time.Minute})
	return err
}

// readFacts reads, in one batch, the people the settings name (with the facts they
// need) unless they were read within DirectoryTTL, and the owner of an existing
// client with the lead's phone or e-mail. People are read by the pipeline's reader.
func (r *EngineRouter) readFacts(ctx context.Context, memberID string, needs routing.Needs,
	dir *routing.Directory, lead *routing.Lead) error {
	var extra []bitrix.Command
	if needs.ExistingOwner {
		extra = queue.ClientCommands("client", *lead)
	}
	client := r.Clients(memberID)
	people, res, err := r.reader().Read(ctx, client, memberID, needs, extra...)
	if err != nil {
		return err
	}
	if res != nil && len(extra) > 0 {
		owners, err := queue.ClientOwners(ctx, client, res,
			map[string]routing.Lead{"client": *lead})
		if err != nil {
			return err
		}
		lead.ExistingOwner = owners["client"]
	}
	maps.Copy(dir.People, people)
	return nil
}

// reader returns the people reader, built on first use from DirectoryTTL.
func (r *EngineRouter) reader() *queue.People {
	r.once.Do(func() {
		ttl := r.DirectoryTTL
		if ttl == 0 {
			ttl = DefaultDirectoryTTL
		}
		r.people = queue.NewPeople(ttl, r.Now)
	})
	return r.people
}

// DefaultDirectoryTTL is how long an EngineRouter reuses a portal's people.
const DefaultDirectoryTTL = 30 * time.Second

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
