package bitrixtest

import (
	"cmp"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Faults switch on failures a real portal shows now and then. Probabilities are in
// [0, 1] and drawn from a generator seeded with Seed, so a run can be repeated.
type Faults struct {
	Seed int64
	// Error5xx answers a REST call with a server error before running it: half the
	// time a JSON 500 INTERNAL_SERVER_ERROR, half an HTML 502 from the front end.
	Error5xx float64
	// Error5xxAfter runs the call and then answers 500, so the caller cannot know
	// whether it took effect.
	Error5xxAfter float64
	// OAuthError5xx answers a token request with a 503 from the OAuth server, before
	// any token is used up.
	OAuthError5xx float64
	// QueryLimit answers 503 QUERY_LIMIT_EXCEEDED whatever the bucket says.
	QueryLimit float64
	// OperationLimit answers 429 OPERATION_TIME_LIMIT, with the method's budget reset
	// OperationReset later (default one minute).
	OperationLimit float64
	OperationReset time.Duration
	// Slow delays a REST answer by SlowBy.
	Slow   float64
	SlowBy time.Duration
	// DropEvents loses an event delivery (it is recorded, never sent);
	// DuplicateEvents sends one twice; ReorderEvents holds one back behind the next.
	DropEvents, DuplicateEvents, ReorderEvents float64
}

// faultState draws faults; the zero value injects none.
type faultState struct {
	mu  sync.Mutex // guards f and rnd
	f   Faults
	rnd *rand.Rand
}

// SetFaults replaces the server's fault injection; the zero Faults switches it off.
func (s *Server) SetFaults(f Faults) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.f = f
	seed := uint64(f.Seed)
	s.faults.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// draw reports whether an event of probability p (read from the faults) happens.
func (fs *faultState) draw(p func(*Faults) float64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.rnd == nil {
		return false
	}
	prob := p(&fs.f)
	return prob > 0 && fs.rnd.Float64() < prob
}

// before runs ahead of a REST call: a delay, a server error or a rate refusal.
func (fs *faultState) before(ctx context.Context) *restError {
	if fs.draw(func(f *Faults) float64 { return f.Slow }) {
		fs.mu.Lock()
		d := fs.f.SlowBy
		fs.mu.Unlock()
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	if fs.draw(func(f *Faults) float64 { return f.Error5xx }) {
		if fs.draw(func(*Faults) float64 { return 0.5 }) {
			return &restError{status: 0, code: "BAD_GATEWAY", desc: "Bad Gateway"}
		}
		return newError(500, "INTERNAL_SERVER_ERROR", "Internal server error")
	}
	if fs.draw(func(f *Faults) float64 { return f.QueryLimit }) {
		return errQueryLimit
	}
	return nil
}

// operationLimit draws a 429 OPERATION_TIME_LIMIT and returns it with the time its
// budget resets.
func (fs *faultState) operationLimit(now time.Time) (*restError, time.Time) {
	if !fs.draw(func(f *Faults) float64 { return f.OperationLimit }) {
		return nil, time.Time{}
	}
	fs.mu.Lock()
	reset := cmp.Or(fs.f.OperationReset, time.Minute)
	fs.mu.Unlock()
	return newError(429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."),
		now.Add(reset)
}

func (fs *faultState) after() *restError {
	if fs.draw(func(f *Faults) float64 { return f.Error5xxAfter }) {
		return newError(500, "INTERNAL_SERVER_ERROR", "Internal server error")
	}
	return nil
}
