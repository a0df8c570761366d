package bitrixtest

import (
	"sync"
	"time"
)

// leakyBucket is a portal's request-rate limit: every request adds one, the level
// drains by rate a second, and a request that would lift it over burst is refused.
type leakyBucket struct {
	mu    sync.Mutex // guards level and last
	rate  float64
	burst float64
	level float64
	last  time.Time
}

// take reports whether a request may pass at now, and counts it if so.
func (b *leakyBucket) take(now time.Time) bool {
	if b.rate < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.level -= now.Sub(b.last).Seconds() * b.rate
		if b.level < 0 {
			b.level = 0
		}
	}
	b.last = now
	if b.level+1 > b.burst {
		return false
	}
	b.level++
	return true
}

// SetRate changes the portal's leaky bucket (Enterprise: 5 a second, 250); a negative
// rate switches it off.
func (p *Portal) SetRate(rate float64, burst int) {
	p.bucket.mu.Lock()
	defer p.bucket.mu.Unlock()
	p.bucket.rate, p.bucket.burst = rate, float64(burst)
}

// BucketLevel is how full the portal's bucket is now.
func (p *Portal) BucketLevel() float64 {
	b := &p.bucket
	b.mu.Lock()
	defer b.mu.Unlock()
	level := b.level - time.Since(b.last).Seconds()*b.rate
	if level < 0 || b.last.IsZero() {
		return 0
	}
	return level
}

const opSlots = 10

// opCounter is one method's execution time in ten slots covering the operating window.
type opCounter struct {
	seconds [opSlots]float64
	slot    [opSlots]int64 // which slot number (time / slot length) each entry holds
}

// opStat is what the "time" block reports about a method's budget.
type opStat struct {
	operating float64
	resetAt   time.Time
}

func (p *Portal) slotLen() time.Duration { return p.srv.opts.OperatingWindow / opSlots }

// stat sums the live slots at now.
func (c *opCounter) stat(now time.Time, slotLen time.Duration) opStat {
	cur := now.UnixNano() / int64(slotLen)
	var st opStat
	oldest := cur
	for i := range c.seconds {
		if c.slot[i] > cur-opSlots && c.seconds[i] > 0 {
			st.operating += c.seconds[i]
			oldest = min(oldest, c.slot[i])
		}
	}
	st.resetAt = time.Unix(0, (oldest+opSlots)*int64(slotLen))
	return st
}

func (c *opCounter) add(d time.Duration, now time.Time, slotLen time.Duration) {
	cur := now.UnixNano() / int64(slotLen)
	i := cur % opSlots
	if c.slot[i] != cur {
		c.slot[i], c.seconds[i] = cur, 0
	}
	c.seconds[i] += d.Seconds()
}

// operatingBlocked reports whether method has spent its budget.
func (p *Portal) operatingBlocked(method string, now time.Time) (opStat, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.operating[method]
	if c == nil {
		return opStat{resetAt: now.Add(p.srv.opts.OperatingWindow)}, false
	}
	st := c.stat(now, p.slotLen())
	return st, st.operating > p.srv.opts.OperatingLimit.Seconds()
}

// addOperating books d of execution time on method and returns the new state.
func (p *Portal) addOperating(method string, d time.Duration, now time.Time) opStat {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.operating == nil {
		p.operating = make(map[string]*opCounter)
	}
	c := p.operating[method]
	if c == nil {
		c = &opCounter{}
		p.operating[method] = c
	}
	c.add(d, now, p.slotLen())
	return c.stat(now, p.slotLen())
}

// AddOperatingTime books d of execution time on a method, as if calls had taken that
// long; once a method's total passes the operating limit, its next call answers 429
// OPERATION_TIME_LIMIT.
func (p *Portal) AddOperatingTime(method string, d time.Duration) {
	p.addOperating(method, d, time.Now())
}
