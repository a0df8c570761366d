package bitrixtest

import (
	"crypto/md5"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"
)

// offlineEvent is one row of the offline event queue.
type offlineEvent struct {
	id        int
	at        time.Time
	event     string
	entityID  int
	messageID string
	connector string
	processID string
	errored   bool
}

// offlineQueue keeps the latest state per object: a new change of an object that is
// still waiting (not reserved) updates its row instead of adding one.
type offlineQueue struct {
	rows       []*offlineEvent
	next       int
	nextProc   int
	lastNotify time.Time
}

func (q *offlineQueue) record(event string, id int, connector string, now time.Time) {
	sum := md5.Sum([]byte(event + "|" + `{"FIELDS":{"ID":"` + strconv.Itoa(id) + `"}}`))
	msg := hex.EncodeToString(sum[:])
	for _, r := range q.rows {
		if r.messageID == msg && r.connector == connector && r.processID == "" {
			r.at = now
			r.errored = false // a new change is pending again
			return
		}
	}
	q.next++
	q.rows = append(q.rows, &offlineEvent{id: q.next, at: now, event: event, entityID: id,
		messageID: msg, connector: connector})
}

// offlineNotifications are ONOFFLINEEVENT deliveries, at most one per minTimeout.
// Callers hold p.mu.
func (p *Portal) offlineNotifications() []*delivery {
	var jobs []*delivery
	now := time.Now()
	for _, b := range p.onlineTargets("ONOFFLINEEVENT") {
		if now.Sub(p.offline.lastNotify) < time.Duration(b.MinTimeout)*time.Second {
			continue
		}
		tok := p.srv.issue(p, p.firstAdminLocked(), true, 0)
		jobs = append(jobs, p.newDelivery(b, "ONOFFLINEEVENT", nil, p.userAuth(tok, true)))
	}
	if len(jobs) > 0 {
		p.offline.lastNotify = now
	}
	return jobs
}

func (p *Portal) firstAdminLocked() int {
	for _, u := range p.users {
		if u.Admin && !u.Dismissed {
			return u.ID
		}
	}
	return 0
}

func (r *offlineEvent) row(loc *time.Location, withState bool) *obj {
	o := newObj().set("ID", strconv.Itoa(r.id)).
		set("TIMESTAMP_X", r.at.In(loc).Format(dateLayout)).set("EVENT_NAME", r.event).
		set("EVENT_DATA", newObj().set("FIELDS", newObj().set("ID", strconv.Itoa(r.entityID)))).
		set("EVENT_ADDITIONAL", newObj()).set("MESSAGE_ID", r.messageID)
	if withState {
		var proc any
		if r.processID != "" {
			proc = r.processID
		}
		errFlag := "N"
		if r.errored {
			errFlag = "Y"
		}
		o.set("PROCESS_ID", proc).set("ERROR", errFlag).set("CONNECTOR_ID", r.connector)
	}
	return o
}

func (r *offlineEvent) entity(loc *time.Location) *entity {
	return &entity{id: r.id, fields: map[string]string{
		"ID": strconv.Itoa(r.id), "TIMESTAMP_X": r.at.In(loc).Format(dateLayout),
		"EVENT_NAME": r.event, "MESSAGE_ID": r.messageID, "PROCESS_ID": r.processID,
	}}
}

// requireAdmin refuses non-administrators the way offline-queue methods do.
func requireAdmin(c *call) *restError {
	if !c.isAdmin() {
		return newError(403, "ACCESS_DENIED", "Access denied!")
	}
	return nil
}

// eventOfflineGet answers event.offline.get: with clear=1 (default) the rows are
// removed, with clear=0 they are reserved under a new process_id.
func eventOfflineGet(c *call) (outcome, *restError) {
	if err := requireAdmin(c); err != nil {
		return outcome{}, err
	}
	conds := parseFilter(c.object("filter"))
	limit, ok := intOf(c.param("limit"))
	if !ok || limit <= 0 {
		limit = 50
	}
	clear := c.param("clear") == nil || truthy(c.param("clear"))
	process := str(c.param("process_id"))
	connector := str(c.param("auth_connector"))
	wantErr := truthy(c.param("error"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var picked []*offlineEvent
	for _, r := range p.offline.rows {
		if process != "" {
			if r.processID == process {
				picked = append(picked, r)
			}
			continue
		}
		if r.processID == "" && r.errored == wantErr && r.connector == connector &&
			matches(r.entity(p.loc), conds) {
			picked = append(picked, r)
		}
	}
	sortOffline(picked, c.object("order"), p.loc)
	if len(picked) > limit {
		picked = picked[:limit]
	}
	var procOut any
	if !clear && len(picked) > 0 && process == "" {
		p.offline.nextProc++
		process = randomHex(8) + strconv.Itoa(p.offline.nextProc)
		for _, r := range picked {
			r.processID = process
		}
	}
	if !clear && process != "" {
		procOut = process
	}
	events := []any{}
	for _, r := range picked {
		events = append(events, r.row(p.loc, false))
	}
	if clear {
		p.offline.remove(func(r *offlineEvent) bool { return contains(picked, r) })
	}
	return outcome{result: newObj().set("process_id", procOut).set("events", events)}, nil
}

func sortOffline(rows []*offlineEvent, order *obj, loc *time.Location) {
	if order.len() == 0 {
		order = newObj().set("TIMESTAMP_X", "ASC").set("ID", "ASC")
	}
	es := make([]*entity, len(rows))
	byID := make(map[int]*offlineEvent, len(rows))
	for i, r := range rows {
		es[i] = r.entity(loc)
		byID[r.id] = r
	}
	sortEntities(es, order)
	for i, e := range es {
		rows[i] = byID[e.id]
	}
}

func contains(rows []*offlineEvent, r *offlineEvent) bool {
	for _, x := range rows {
		if x == r {
			return true
		}
	}
	return false
}

func (q *offlineQueue) remove(drop func(*offlineEvent) bool) int {
	kept := q.rows[:0]
	n := 0
	for _, r := range q.rows {
		if drop(r) {
			n++
			continue
		}
		kept = append(kept, r)
	}
	q.rows = kept
	return n
}

// eventOfflineClear answers event.offline.clear: removes rows of a process, all of
// them or those named by id[] / message_id[].
func eventOfflineClear(c *call) (outcome, *restError) {
	if err := requireAdmin(c); err != nil {
		return outcome{}, err
	}
	process := str(c.param("process_id"))
	if process == "" {
		return outcome{}, newError(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty")
	}
	ids := strList(c.param("id"))
	msgs := strList(c.param("message_id"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offline.remove(func(r *offlineEvent) bool {
		if r.processID != process {
			return false
		}
		if len(ids) == 0 && len(msgs) == 0 {
			return true
		}
		return inStrings(ids, strconv.Itoa(r.id)) || inStrings(msgs, r.messageID)
	})
	return outcome{result: true}, nil
}

// eventOfflineError answers event.offline.error: marks rows of a process as failed.
func eventOfflineError(c *call) (outcome, *restError) {
	if err := requireAdmin(c); err != nil {
		return outcome{}, err
	}
	process := str(c.param("process_id"))
	if process == "" {
		return outcome{}, newError(400, "ERROR_ARGUMENT", "Argument 'process_id' is null or empty")
	}
	msgs := strList(c.param("message_id"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.offline.rows {
		if r.processID == process && inStrings(msgs, r.messageID) {
			r.errored = true
			r.processID = ""
		}
	}
	return outcome{result: true}, nil
}

// eventOfflineList answers event.offline.list: read-only, pages of 50.
func eventOfflineList(c *call) (outcome, *restError) {
	if err := requireAdmin(c); err != nil {
		return outcome{}, err
	}
	conds := parseFilter(c.object("filter"))
	start, _ := intOf(c.param("start"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var picked []*offlineEvent
	for _, r := range p.offline.rows {
		if matches(r.entity(p.loc), conds) {
			picked = append(picked, r)
		}
	}
	order := c.object("order")
	if order.len() == 0 {
		order = newObj().set("ID", "ASC")
	}
	sortOffline(picked, order, p.loc)
	from, to, total, next := page(len(picked), start)
	rows := []any{}
	for _, r := range picked[from:to] {
		rows = append(rows, r.row(p.loc, true))
	}
	return outcome{result: rows, total: total, next: next}, nil
}

func inStrings(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// OfflineEvents returns the names and entity IDs of the rows waiting in the portal's
// offline queue, oldest first.
func (p *Portal) OfflineEvents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rows := append([]*offlineEvent(nil), p.offline.rows...)
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.event + ":" + strconv.Itoa(r.entityID)
	}
	return out
}
