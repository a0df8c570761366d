package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
)

// Caller is a portal's REST client; *bitrix.Client satisfies it.
type Caller interface {
	Call(ctx context.Context, method string, params any, result any) error
	Batch(ctx context.Context, cmds []bitrix.Command, halt bool) (*bitrix.BatchResult, error)
}

// Candidate is a lead about to be created, as routing sees it.
type Candidate struct {
	// IntakeID is the post the lead comes from.
	IntakeID string
	// SourceID is the intake source the lead came from, also in Fields as
	// INTAKE_SOURCE, so that a rule can pick out the leads of one intake URL.
	SourceID string
	// Fields are the crm.lead.add fields in upper case (SOURCE_ID, UTM_*, UF_CRM_*,
	// OPPORTUNITY, ...), multi-fields left out.
	Fields map[string]string
	Phones []string
	Emails []string
}

// Decision is the owner routing chose for a Candidate.
type Decision struct {
	// Owner is the responsible person; zero leaves the lead to the portal's default.
	Owner int64 `json:"owner,omitempty"`
	// Rule names what decided: a routing rule's ID, or "responsible" for an
	// override by the post.
	Rule string `json:"rule,omitempty"`
	// Reason is the decision in one line for people, written on the lead's timeline.
	Reason string `json:"reason,omitempty"`
	// StandIn is the ID the lead was decided under before it existed, if any.
	StandIn int64 `json:"stand_in,omitempty"`
	// Record is what the Router needs back in Created, kept as it gave it.
	Record json.RawMessage `json:"record,omitempty"`
}

// Router decides a new lead's owner before the lead exists, and records the
// decision once the lead does, so that the pipeline treats the lead's ONCRMLEADADD
// as already routed.
type Router interface {
	Route(ctx context.Context, memberID string, c Candidate) (Decision, error)
	Created(ctx context.Context, memberID string, leadID int64, d Decision) error
}

// Config tunes a Service. The zero value of each field means its default.
type Config struct {
	// Consumer names this instance in the consumer group; default host-pid-random.
	Consumer string
	// PollInterval is how often idle workers look for posts (1s); a post accepted
	// by this instance wakes them at once.
	PollInterval time.Duration
	// ClaimIdle is how long a post may sit with a worker that does not finish it
	// before others take it over (5s).
	ClaimIdle time.Duration
	// Lease is how long one worker may work on one post before another may (2m).
	Lease time.Duration
	// BackoffBase and BackoffMax bound the wait between attempts (2s, 5m).
	BackoffBase, BackoffMax time.Duration
	// MaxAttempts is how many failed attempts make a post a dead letter (60).
	MaxAttempts int
	// Concurrency is how many portals are worked on at once (8).
	Concurrency int
	// Batch is how many posts a worker takes from a portal at a time (20).
	Batch int
	// WaitPoll is how often Wait looks at a post (25ms).
	WaitPoll time.Duration
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.PollInterval, time.Second)
	set(&c.ClaimIdle, 5*time.Second)
	set(&c.Lease, 2*time.Minute)
	set(&c.BackoffBase, 2*time.Second)
	set(&c.BackoffMax, 5*time.Minute)
	set(&c.WaitPoll, 25*time.Millisecond)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 60
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Batch <= 0 {
		c.Batch = 20
	}
	if c.Consumer == "" {
		host, _ := os.Hostname()
		c.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID(3))
	}
}

// Service accepts intake posts and creates their leads. Accept, Status and Wait
// serve the intake endpoint; Start runs the workers that create the leads. It is
// safe for concurrent use.
type Service struct {
	rdb     redis.UniversalClient
	clients func(memberID string) Caller
	router  Router
	cfg     Config
	log     *slog.Logger
	now     func() time.Time

	wake chan struct{}

	mu       sync.Mutex         // guards the fields below
	stopLoop context.CancelFunc // stops taking posts
	stopWork context.CancelFunc // cuts off posts in hand
	done     chan struct{}
	busy     map[string]bool   // portals a worker is on
	grouped  map[string]bool   // portals whose consumer group exists
	cursors  map[string]string // where each portal's next scan of idle posts starts
}

// New returns a Service on rdb. clients gives the REST client of a portal
// (oauth.Store.Client); router decides owners.
func New(rdb redis.UniversalClient, clients func(memberID string) Caller, router Router,
	cfg Config, log *slog.Logger) *Service {
	cfg.defaults()
	return &Service{
		rdb: rdb, clients: clients, router: router, cfg: cfg, log: log, now: time.Now,
		wake: make(chan struct{}, 1), busy: map[string]bool{}, grouped: map[string]bool{},
		cursors: map[string]string{},
	}
}

// nudge wakes the workers of this instance.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the workers until Stop. Calling Start twice does nothing.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLoop != nil {
		return
	}
	base := context.WithoutCancel(ctx)
	loopCtx, stopLoop := context.WithCancel(base)
	workCtx, stopWork := context.WithCancel(base)
	s.stopLoop, s.stopWork = stopLoop, stopWork
	s.done = make(chan struct{})
	go s.run(loopCtx, workCtx, s.done)
	s.log.Info("intake workers started", "consumer", s.cfg.Consumer)
}

// Stop stops taking posts and waits, until ctx ends, for the posts in hand to
// finish; then it cuts them off, and another worker takes them later. Stop is
// idempotent.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	stopLoop, stopWork, done := s.stopLoop, s.stopWork, s.done
	s.stopLoop, s.stopWork = nil, nil
	s.mu.Unlock()
	if stopLoop == nil {
		return nil
	}
	stopLoop()
	defer stopWork()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stopWork()
		<-done
		return fmt.Errorf("stop intake workers: %w", ctx.Err())
	}
}

// run polls the portals with intake work and drains each on its own goroutine,
// Concurrency at a time, until loopCtx ends; the posts are worked on in workCtx.
func (s *Service) run(loopCtx, workCtx context.Context, done chan struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, s.cfg.Concurrency)
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		portals, err := s.readyPortals(loopCtx)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("list intake portals", "error", err)
		}
		for memberID, score := range portals {
			if !s.claimPortal(memberID) {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-loopCtx.Done():
				s.releasePortal(memberID)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				defer s.releasePortal(memberID)
				s.drain(loopCtx, workCtx, memberID, score)
			}()
		}
		select {
		case <-loopCtx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

func (s *Service) claimPortal(memberID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[memberID] {
		return false
	}
	s.busy[memberID] = true
	return true
}

func (s *Service) releasePortal(memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, memberID)
}
