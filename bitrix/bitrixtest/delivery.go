package bitrixtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Delivery is one event POST the portal sent (or dropped, under fault injection).
type Delivery struct {
	MemberID  string
	Event     string
	Handler   string
	HandlerID int
	// Body is the form-encoded body as sent; Form is the same, decoded.
	Body string
	Form url.Values
	// Status is the handler's HTTP status, 0 when the POST failed or was dropped.
	Status int
	Err    string
	// Dropped is set for a delivery lost on purpose; Duplicate for the second copy of
	// a duplicated one.
	Dropped, Duplicate bool
	At                 time.Time
}

// delivery is a queued event POST.
type delivery struct {
	portal    *Portal
	event     string
	handler   string
	handlerID int
	head      [][2]string // event, event_handler_id, data[...]
	tail      [][2]string // auth[...]
}

// body encodes the form in the portal's order, with ts set to now.
func (d *delivery) body(now time.Time) string {
	var b strings.Builder
	write := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	for _, kv := range d.head {
		write(kv[0], kv[1])
	}
	write("ts", strconv.FormatInt(now.Unix(), 10))
	for _, kv := range d.tail {
		write(kv[0], kv[1])
	}
	return b.String()
}

// deliverer sends queued events with a few workers, once, never retried.
type deliverer struct {
	s      *Server
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards queues, ring and closed
	cond   *sync.Cond
	queues map[*Portal][]*delivery // pending deliveries per portal
	ring   []*Portal               // portals with pending deliveries, served in turn
	closed bool
}

func newDeliverer(s *Server) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{
		s: s,
		client: &http.Client{
			Timeout: s.opts.DeliveryTimeout,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: s.opts.DeliveryWorkers,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		ctx:    ctx,
		cancel: cancel,
		queues: make(map[*Portal][]*delivery),
	}
	d.cond = sync.NewCond(&d.mu)
	for range s.opts.DeliveryWorkers {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

func (d *deliverer) enqueue(jobs []*delivery) {
	if len(jobs) == 0 {
		return
	}
	d.mu.Lock()
	if !d.closed {
		for _, job := range jobs {
			q := d.queues[job.portal]
			if len(q) == 0 {
				d.ring = append(d.ring, job.portal)
			}
			d.queues[job.portal] = append(q, job)
		}
	}
	d.mu.Unlock()
	d.cond.Broadcast()
}

// next pops a job, serving the portals with pending deliveries in turn so that one
// portal's burst does not hold back another's events. Under the reorder fault a
// portal's first delivery is held back behind its second.
func (d *deliverer) next() *delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.ring) == 0 && !d.closed {
		d.cond.Wait()
	}
	if d.closed {
		return nil
	}
	p := d.ring[0]
	d.ring = d.ring[1:]
	q := d.queues[p]
	if len(q) > 1 && d.s.faults.draw(func(f *Faults) float64 { return f.ReorderEvents }) {
		q[0], q[1] = q[1], q[0]
	}
	job := q[0]
	q[0] = nil
	q = q[1:]
	if len(q) == 0 {
		delete(d.queues, p)
	} else {
		d.queues[p] = q
		d.ring = append(d.ring, p)
	}
	return job
}

func (d *deliverer) work() {
	defer d.wg.Done()
	for {
		job := d.next()
		if job == nil {
			return
		}
		if d.s.faults.draw(func(f *Faults) float64 { return f.DropEvents }) {
			d.record(job, job.body(time.Now()), 0, "dropped", true, false)
			continue
		}
		d.send(job, false)
		if d.s.faults.draw(func(f *Faults) float64 { return f.DuplicateEvents }) {
			d.send(job, true)
		}
	}
}

func (d *deliverer) send(job *delivery, duplicate bool) {
	body := job.body(time.Now())
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, job.handler,
		strings.NewReader(body))
	if err != nil {
		d.record(job, body, 0, err.Error(), false, duplicate)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Bitrix24 Webhook Engine")
	resp, err := d.client.Do(req)
	if err != nil {
		d.s.log.Debug("event delivery failed", "member_id", job.portal.memberID,
			"event", job.event, "error", err)
		d.record(job, body, 0, err.Error(), false, duplicate)
		return
	}
	discard(resp.Body)
	resp.Body.Close()
	errText := ""
	if resp.StatusCode >= 300 {
		errText = fmt.Sprintf("handler answered %d", resp.StatusCode)
	}
	d.record(job, body, resp.StatusCode, errText, false, duplicate)
}

func (d *deliverer) record(job *delivery, body string, status int, errText string,
	dropped, duplicate bool) {
	form, _ := url.ParseQuery(body)
	p := job.portal
	p.mu.Lock()
	if limit := d.s.opts.DeliveryLogSize; len(p.deliveries) >= limit {
		p.deliveries = append(p.deliveries[:0], p.deliveries[len(p.deliveries)/2:]...)
	}
	p.deliveryCount++
	p.deliveries = append(p.deliveries, Delivery{
		MemberID: p.memberID, Event: job.event, Handler: job.handler, HandlerID: job.handlerID,
		Body: body, Form: form, Status: status, Err: errText, Dropped: dropped,
		Duplicate: duplicate, At: time.Now(),
	})
	if p.delivered != nil {
		close(p.delivered)
		p.delivered = nil
	}
	p.mu.Unlock()
}

func (d *deliverer) stop() {
	d.mu.Lock()
	d.closed = true
	d.queues, d.ring = nil, nil
	d.mu.Unlock()
	d.cond.Broadcast()
	d.cancel()
	d.wg.Wait()
}

// Deliveries returns the portal's event deliveries in the order they finished (the
// latest Options.DeliveryLogSize of them).
func (p *Portal) Deliveries() []Delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Delivery(nil), p.deliveries...)
}

// WaitDeliveries waits until the portal has made at least n deliveries since it was
// created (dropped ones included).
func (p *Portal) WaitDeliveries(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		if p.deliveryCount >= n {
			p.mu.Unlock()
			return nil
		}
		if p.delivered == nil {
			p.delivered = make(chan struct{})
		}
		ch := p.delivered
		have := p.deliveryCount
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d event deliveries (have %d): %w", n, have, ctx.Err())
		}
	}
}
