package queue

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Appends of concurrent Enqueue calls share round trips to Redis (group commit):
// an append joins its node's pending list, and a flush sends everything pending
// there as one pipeline of XADDs followed by one ZADD NX per portal. No append
// waits for a timer: with no flush in flight one starts at once, and what arrives
// meanwhile goes out with the next. Every caller still waits for its own XADD's
// answer, so an event is acknowledged only once it is in its stream. On a cluster
// the appends are grouped by the master of the portal's stream, so a slow master
// delays only its own portals' events.
const (
	// appendFlushes is how many flushes of one group may be in flight at once.
	appendFlushes = 1
	// appendBatch is the most appends one flush sends.
	appendBatch = 128
)

// appender groups the stream appends bound for one Redis node. The zero value is
// ready to use.
type appender struct {
	mu       sync.Mutex // guards pending and flushing
	pending  []*appendReq
	flushing int
}

// appendReq is one Enqueue waiting for its XADD.
type appendReq struct {
	ctx      context.Context
	memberID string
	values   map[string]any
	at       time.Time
	done     chan error // buffered: a flush never waits for a caller that gave up
}

// push queues r and reports whether the caller must start a flush loop, because
// fewer than appendFlushes are in flight.
func (a *appender) push(r *appendReq) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = append(a.pending, r)
	if a.flushing >= appendFlushes {
		return false
	}
	a.flushing++
	return true
}

// next takes up to appendBatch pending appends. When none are pending it returns
// nil, and the calling flush loop counts as ended.
func (a *appender) next() []*appendReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := min(len(a.pending), appendBatch)
	if n == 0 {
		a.flushing--
		return nil
	}
	batch := make([]*appendReq, n)
	copy(batch, a.pending)
	a.pending = append(a.pending[:0], a.pending[n:]...)
	return batch
}

// appendTo queues r on its node's appender and waits for its outcome or the end of
// r.ctx.
func (q *Queue) appendTo(r *appendReq) error {
	a := q.appenderFor(r.ctx, r.memberID)
	if a.push(r) {
		go q.flushLoop(a)
	}
	select {
	case err := <-r.done:
		return err
	case <-r.ctx.Done():
		return r.ctx.Err() // a flush that has not sent r yet leaves it out
	}
}

// appenderFor returns the appender of the node that holds the portal's stream: one
// per cluster master, and a single one for any other client.
func (q *Queue) appenderFor(ctx context.Context, memberID string) *appender {
	node := ""
	if cc, ok := q.rdb.(*redis.ClusterClient); ok {
		if c, err := cc.MasterForKey(ctx, keyspace.EventStream(memberID)); err == nil {
			node = c.Options().Addr
		}
	}
	if a, ok := q.appenders.Load(node); ok {
		return a.(*appender)
	}
	a, _ := q.appenders.LoadOrStore(node, &appender{})
	return a.(*appender)
}

// flushLoop sends a's pending appends until none are left.
func (q *Queue) flushLoop(a *appender) {
	for batch := a.next(); batch != nil; batch = a.next() {
		q.flush(batch)
	}
}

// flush sends batch in one pipeline and gives every request its own outcome.
// Requests whose caller has already given up are left out. The pipeline may run
// until the latest of the callers' deadlines, or without one when a caller has
// none (go-redis's own timeouts still apply), so that no caller with time left is
// cut short by another's deadline.
func (q *Queue) flush(batch []*appendReq) {
	live := batch[:0]
	var deadline time.Time
	bounded := true
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
		if d, ok := r.ctx.Deadline(); !ok {
			bounded = false
		} else if d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background()
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	pipe := q.rdb.Pipeline()
	adds := make([]*redis.StringCmd, len(live))
	for i, r := range live {
		adds[i] = pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: keyspace.EventStream(r.memberID), Values: r.values})
	}
	// The marks go after every XADD, so that a worker drawn by one finds the entries.
	marks := make(map[string]*redis.IntCmd, 1)
	for _, r := range live {
		if _, ok := marks[r.memberID]; !ok {
			marks[r.memberID] = q.markReady(ctx, pipe, r.memberID, r.at)
		}
	}
	pipe.Exec(ctx) // every command's own error is read below
	for i, r := range live {
		err := adds[i].Err()
		if err == nil {
			err = marks[r.memberID].Err()
		}
		r.done <- err
	}
}
