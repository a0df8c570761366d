package routing

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Lead is the part of a CRM lead routing looks at.
type Lead struct {
	ID int64
	// Fields are the lead's fields in Bitrix24's legacy upper-case form
	// (SOURCE_ID, OPPORTUNITY, UF_CRM_…); values of multiple fields are joined.
	Fields         map[string]string
	Phones, Emails []string
	// AssignedByID and CreatedByID are the lead's responsible and creator as it
	// arrived.
	AssignedByID, CreatedByID int64
	// ExistingOwner is the owner of a contact, company or open lead that matches the
	// lead's phone or e-mail, found by the pipeline; 0 when none.
	ExistingOwner int64
	// Round counts the deliberate re-routes of the lead (Settings.Reroute): 0 for a
	// new lead. A decision of a higher round replaces the stored one, once: deciding
	// the same round again returns that round's decision. The previous owner's open
	// lead is counted down when the new decision assigns the lead. A lead of a later
	// round is routed whoever its responsible is, as that was set by routing.
	Round int
	// Exclude are people who let the lead's response deadline pass (Team.Deadline):
	// wherever they stand in the lead's chain, they are skipped with
	// SkipMissedDeadline.
	Exclude []int64
	// PassTeam, when set, passes the lead on within that team after a missed
	// deadline: the decision looks at that team's members only (no rules, no
	// existing client's owner, no fallback), and when none of them is eligible it
	// leaves the lead with its owner (NotRouted, NotPassedOn) instead of holding it.
	// It goes with a Round above the lead's last.
	PassTeam string
}

// Person is what the pipeline knows about a portal user from Bitrix24.
type Person struct {
	ID   int64
	Name string
	// Active is false for a dismissed or deactivated user.
	Active bool
	// AbsentUntil is when the user's current absence ends; zero when present.
	AbsentUntil time.Time
	// Timeman is the working-day status: TimemanOpened, TimemanPaused,
	// TimemanClosed, or "" when unknown.
	Timeman string
	// TimeZone is the user's IANA time zone; "" when unknown.
	TimeZone string
}

// Directory is the people a decision may consider, keyed by user ID, and the
// portal's language for the trace.
type Directory struct {
	People map[int64]Person
	Lang   string
}

// Outcome is what a decision did with a lead.
type Outcome string

// Outcomes.
const (
	// Assigned: UserID becomes the lead's responsible.
	Assigned Outcome = "assigned"
	// Held: nobody is eligible now; the pipeline tries the lead again later.
	Held Outcome = "held"
	// NotRouted: the settings leave this lead alone; its responsible stays.
	NotRouted Outcome = "not_routed"
)

// Decision is the engine's answer for one lead.
type Decision struct {
	Outcome Outcome `json:"outcome"`
	UserID  int64   `json:"user_id,omitempty"`
	// RuleID is the rule that matched, "" for the default target.
	RuleID string `json:"rule_id,omitempty"`
	// TeamID is the team the person was chosen from, "" for a fixed person or an
	// existing client's owner.
	TeamID string `json:"team_id,omitempty"`
	Trace  Trace  `json:"trace"`
	// SettingsVersion is the version decided under; 0 in a simulation.
	SettingsVersion int `json:"settings_version"`
	// Repeated reports that the lead had been decided before and this is that
	// decision; no turn was spent.
	Repeated bool `json:"repeated,omitempty"`
}

// ErrNoLeadID is returned by Decide for a lead without an ID: its decision could not
// be remembered.
var ErrNoLeadID = errors.New("lead has no ID")

// DefaultDecisionTTL is how long a decision is remembered for its lead.
const DefaultDecisionTTL = 7 * 24 * time.Hour

// Options tune an Engine; the zero value gives the defaults.
type Options struct {
	// DecisionTTL is how long a decision is remembered so that deciding the same lead
	// again returns it; 0 means DefaultDecisionTTL.
	DecisionTTL time.Duration
	// Rand returns uniform numbers in [0, 1) for Random teams; nil means math/rand/v2.
	Rand func() float64
}

// Engine decides who gets each lead, and keeps the portals' routing settings.
// It is safe for concurrent use; any number of engines on any number of instances
// may share one Redis.
type Engine struct {
	rdb  redis.UniversalClient
	log  *slog.Logger
	ttl  time.Duration
	rand func() float64

	mu sync.Mutex // guards cache
	// cache holds each portal's current settings as last read; the decision script
	// checks the version, so a stale entry costs one extra round trip, never a
	// wrong decision.
	cache map[string]*compiled
}

// maxCached bounds the settings cache; it is emptied when full.
const maxCached = 10_000

// compiled is one version of a portal's settings, ready for decisions.
type compiled struct {
	settings *Settings
	version  int
	patterns patterns
}

// NewEngine returns an engine on rdb with default options.
func NewEngine(rdb redis.UniversalClient, log *slog.Logger) *Engine {
	return NewEngineOptions(rdb, log, Options{})
}

// NewEngineOptions returns an engine on rdb.
func NewEngineOptions(rdb redis.UniversalClient, log *slog.Logger, opts Options) *Engine {
	e := &Engine{rdb: rdb, log: log, ttl: opts.DecisionTTL, rand: opts.Rand,
		cache: map[string]*compiled{}}
	if e.ttl <= 0 {
		e.ttl = DefaultDecisionTTL
	}
	if e.rand == nil {
		e.rand = rand.Float64
	}
	return e
}

//go:embed decide.lua
var decideSource string

//go:embed release.lua
var releaseSource string

var (
	decideScript  = redis.NewScript(decideSource)
	releaseScript = redis.NewScript(releaseSource)
)

// Decide chooses the responsible person for the lead from the portal's current
// settings, the facts in dir and the time now. The part that touches rotation state,
// caps and counters is one script call; deciding the same lead again within the
// decision TTL returns the first decision without spending a turn.
func (e *Engine) Decide(ctx context.Context, memberID string, lead Lead, dir Directory,
	now time.Time) (Decision, error) {
	start := time.Now()
	d, err := e.decide(ctx, memberID, lead, dir, now)
	if err == nil {
		observe(d)
		decideSeconds.Observe(time.Since(start).Seconds())
	}
	return d, err
}

func (e *Engine) decide(ctx context.Context, memberID string, lead Lead, dir Directory,
	now time.Time) (Decision, error) {
	if lead.ID == 0 {
		return Decision{}, fmt.Errorf("decide for portal %s: %w", memberID, ErrNoLeadID)
	}
	for attempt := 0; ; attempt++ {
		c, cached, err := e.current(ctx, memberID, attempt > 0)
		if err != nil {
			return Decision{}, err
		}
		if d, ok := notRouted(c, &lead, dir); ok {
			if cached {
				continue // the script never sees this lead: confirm with fresh settings
			}
			return e.storedOr(ctx, memberID, lead.ID, c, dir, d)
		}
		pl := c.settings.buildPlan(&lead, dir, now, c.patterns, e.rand)
		pl.Ver, pl.TTL, pl.Round = c.version, int64(e.ttl/time.Second), lead.Round
		res, state, err := e.run(ctx, memberID, &pl)
		if err != nil {
			return Decision{}, err
		}
		if state == stateStale && attempt < 3 {
			continue
		}
		if state == stateStale {
			return Decision{}, fmt.Errorf("decide lead %d for portal %s: settings keep changing",
				lead.ID, memberID)
		}
		d := c.settings.decision(res, dir)
		d.Repeated = state == stateRepeated
		e.log.Debug("lead decided", "member_id", memberID, "lead_id", lead.ID,
			"outcome", d.Outcome, "user_id", d.UserID, "repeated", d.Repeated)
		return d, nil
	}
}

// storedOr returns the lead's stored decision when it was assigned before (and the
// settings changed since to leave it alone), or d.
func (e *Engine) storedOr(ctx context.Context, memberID string, leadID int64, c *compiled,
	dir Directory, d Decision) (Decision, error) {
	if c.version == 0 {
		return d, nil // nothing was ever decided for the portal
	}
	body, err := e.rdb.Get(ctx, keyspace.RoutingDecision(memberID, leadID)).Result()
	if errors.Is(err, redis.Nil) {
		return d, nil
	}
	if err != nil {
		return Decision{}, fmt.Errorf("read decision of lead %d for portal %s: %w",
			leadID, memberID, err)
	}
	var res result
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		return Decision{}, fmt.Errorf("decode decision of lead %d: %w", leadID, err)
	}
	prior := c.settings.decision(res, dir)
	prior.Repeated = true
	return prior, nil
}

// notRouted returns the decision for a lead the settings leave alone.
func notRouted(c *compiled, l *Lead, dir Directory) (Decision, bool) {
	reason := NotConfigured
	if c.version > 0 {
		reason = c.settings.scopeReason(l)
	}
	if reason == "" {
		return Decision{}, false
	}
	d := Decision{Outcome: NotRouted, SettingsVersion: c.version}
	params := map[string]string{"reason": reason}
	switch reason {
	case NotInSources:
		params["source"] = l.value("SOURCE_ID")
	case NotAssignedTo, NotManualKept:
		params["user_id"] = fmt.Sprint(l.AssignedByID)
		params["name"] = dir.name(l.AssignedByID)
	}
	d.Trace.Entries = []TraceEntry{{Code: CodeNotRouted, Params: params}}
	return d, true
}

// Script answers.
const (
	stateDecided  = 0
	stateRepeated = 1
	stateStale    = 2
)

// run calls the decision script with the plan.
func (e *Engine) run(ctx context.Context, memberID string, pl *plan) (result, int, error) {
	body, err := json.Marshal(pl)
	if err != nil {
		return result{}, 0, fmt.Errorf("encode plan for lead %d: %w", pl.Lead, err)
	}
	keys := []string{keyspace.RoutingSettings(memberID), keyspace.RoutingLedger(memberID),
		keyspace.RoutingDecision(memberID, pl.Lead)}
	vals, err := decideScript.Run(ctx, e.rdb, keys, body).Slice()
	if err != nil {
		return result{}, 0, fmt.Errorf("decide lead %d for portal %s: %w", pl.Lead, memberID, err)
	}
	if len(vals) != 2 {
		return result{}, 0, fmt.Errorf("decide lead %d for portal %s: script answered %v",
			pl.Lead, memberID, vals)
	}
	out, _ := vals[0].(string)
	state, _ := vals[1].(int64)
	if state == stateStale {
		return result{}, stateStale, nil
	}
	var res result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return result{}, 0, fmt.Errorf("decode decision of lead %d: %w", pl.Lead, err)
	}
	return res, int(state), nil
}

// current returns the portal's settings, from the cache unless reload is set; cached
// reports that they came from the cache.
func (e *Engine) current(ctx context.Context, memberID string,
	reload bool) (c *compiled, cached bool, err error) {
	e.mu.Lock()
	c, ok := e.cache[memberID]
	e.mu.Unlock()
	if ok && !reload {
		return c, true, nil
	}
	s, v, err := e.Settings(ctx, memberID)
	if err != nil {
		return nil, false, err
	}
	c = &compiled{settings: s, version: v, patterns: compilePatterns(s)}
	if v == 0 {
		return c, false, nil // nothing to cache for a portal that never saved settings
	}
	e.mu.Lock()
	if len(e.cache) >= maxCached {
		clear(e.cache)
	}
	e.cache[memberID] = c
	e.mu.Unlock()
	return c, false, nil
}

// Release counts one open lead of userID down, because the lead leadID was closed or
// given to somebody else. Releasing the same lead twice counts down once while its
// decision is remembered; after that, a count never goes below zero.
func (e *Engine) Release(ctx context.Context, memberID string, userID, leadID int64) error {
	keys := []string{keyspace.RoutingLedger(memberID), keyspace.RoutingDecision(memberID, leadID)}
	err := releaseScript.Run(ctx, e.rdb, keys, userID).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("release lead %d of user %d for portal %s: %w",
			leadID, userID, memberID, err)
	}
	return nil
}

// name returns the person's name, or "#<id>" when the directory lacks it.
func (d Directory) name(id int64) string {
	if p, ok := d.People[id]; ok && p.Name != "" {
		return p.Name
	}
	return fmt.Sprintf("#%d", id)
}
