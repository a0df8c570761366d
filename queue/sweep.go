package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// sweepLoop sweeps every active portal at start and then every SweepEvery, so that
// leads whose events never arrived (the app was down, the network lost them) are
// routed too.
func (q *Queue) sweepLoop(ctx context.Context) {
	lastList := time.Time{}
	for {
		list := time.Since(lastList) >= q.cfg.ListEvery
		if list {
			lastList = time.Now()
		}
		q.SweepAll(ctx, list)
		if q.cfg.SweepEvery < 0 {
			return
		}
		sleep(ctx, q.cfg.SweepEvery)
		if ctx.Err() != nil {
			return
		}
	}
}

// SweepAll sweeps every active portal one after the other; a portal that fails is
// logged and skipped. list says whether the portals' leads are listed too.
func (q *Queue) SweepAll(ctx context.Context, list bool) {
	members, err := q.portals.ActivePortals(ctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("list portals to sweep failed", "error", err)
		}
		return
	}
	for _, m := range members {
		if ctx.Err() != nil {
			return
		}
		if err := q.Sweep(ctx, m, list); err != nil && ctx.Err() == nil {
			q.log.Warn("sweep portal failed", "member_id", m, "error", err)
		}
	}
}

// Sweep looks for leads of the portal that arrived while nobody listened: it
// drains the portal's offline events (the install binds ONCRMLEADADD offline too,
// so they hold every new lead, 500 per call), and with list it also lists the leads
// created since the app's activation above the last one it saw (50 per call), the
// safety net for offline events lost on the way. Leads with no decision are
// queued. It also counts the open leads of the people whose load the settings use
// (countOpen). At most one instance sweeps a portal at a time.
func (q *Queue) Sweep(ctx context.Context, memberID string, list bool) error {
	lockTTL := max(q.cfg.SweepEvery, time.Minute)
	ok, err := q.rdb.SetNX(ctx, keyspace.SweepLock(memberID), q.cfg.Consumer, lockTTL).Result()
	if err != nil || !ok {
		return err
	}
	defer q.rdb.Del(context.WithoutCancel(ctx), keyspace.SweepLock(memberID))
	if err := q.reschedule(ctx, memberID); err != nil {
		return err
	}
	if err := q.sweepOffline(ctx, memberID); err != nil {
		q.log.Warn("read offline events failed", "member_id", memberID, "error", err)
		list = true
	}
	if err := q.countOpen(ctx, memberID); err != nil {
		q.log.Warn("count open leads failed", "member_id", memberID, "error", err)
	}
	if !list {
		return nil
	}
	return q.sweepLeads(ctx, memberID)
}

// reschedule puts a portal that has work back among the portals with work, in
// case its mark was lost (a Redis failover between the append and the mark).
func (q *Queue) reschedule(ctx context.Context, memberID string) error {
	next, later, err := q.nextWork(ctx, memberID, q.cfg.Now())
	if err == nil {
		err = q.markLater(ctx, memberID, later)
	}
	if err != nil || next.IsZero() {
		return err
	}
	pipe := q.rdb.Pipeline()
	q.markReady(ctx, pipe, memberID, next)
	_, err = pipe.Exec(ctx)
	return err
}

// sweepLeads queues the leads above the last seen ID that have no decision. Only
// leads created since the app was activated on the portal are looked at: older ones
// were there before LeadRouter and keep their owners.
func (q *Queue) sweepLeads(ctx context.Context, memberID string) error {
	client := q.portals.Client(memberID)
	last, err := q.rdb.Get(ctx, keyspace.LastLead(memberID)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read last lead: %w", err)
	}
	filter := map[string]any{">ID": last}
	p, err := q.portals.Portal(ctx, memberID)
	if err != nil {
		return fmt.Errorf("read portal: %w", err)
	}
	switch {
	case !p.ActivatedAt.IsZero():
		filter[">=DATE_CREATE"] = p.ActivatedAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	case last == 0:
		return q.noteLastLead(ctx, memberID, client)
	}
	params := map[string]any{"filter": filter, "select": []string{"ID"}}
	err = client.ListAfterID(ctx, "crm.lead.list", params, func(items json.RawMessage) error {
		ids, err := leadIDs(items)
		if err != nil {
			return err
		}
		if err := q.enqueueUnrouted(ctx, memberID, ids); err != nil {
			return err
		}
		last = max(last, slicesMax(ids))
		return q.rdb.Set(ctx, keyspace.LastLead(memberID), last, 0).Err()
	})
	if err != nil {
		return fmt.Errorf("list new leads: %w", err)
	}
	return nil
}

// noteLastLead records the portal's newest lead as where sweeps start, for a
// portal whose activation time is unknown.
func (q *Queue) noteLastLead(ctx context.Context, memberID string, client *bitrix.Client) error {
	resp, err := client.CallRaw(ctx, "crm.lead.list", map[string]any{
		"order": map[string]string{"ID": "DESC"}, "select": []string{"ID"}, "start": -1,
	})
	if err != nil {
		return fmt.Errorf("find newest lead: %w", err)
	}
	ids, err := leadIDs(resp.Result)
	if err != nil {
		return err
	}
	return q.rdb.SetNX(ctx, keyspace.LastLead(memberID), slicesMax(ids), 0).Err()
}

// enqueueUnrouted queues the leads among ids that have no decision record.
func (q *Queue) enqueueUnrouted(ctx context.Context, memberID string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	fields := make([]string, len(ids))
	for i, id := range ids {
		fields[i] = itoa(id)
	}
	recs, err := q.rdb.HMGet(ctx, keyspace.Routed(memberID), fields...).Result()
	if err != nil {
		return fmt.Errorf("read lead records: %w", err)
	}
	for i, r := range recs {
		if r != nil {
			continue
		}
		if err := q.Enqueue(ctx, memberID, Item{Event: SourceSweep, LeadID: ids[i]}); err != nil {
			return err
		}
		mSwept.Inc()
	}
	return nil
}

// sweepOffline drains the portal's offline events (event.offline.get): lead events
// become queue items, then the portal is told they are processed. The events are
// reserved, not deleted, until they are queued, so a crash in between loses none.
func (q *Queue) sweepOffline(ctx context.Context, memberID string) error {
	client := q.portals.Client(memberID)
	const limit = 500
	for range 20 { // at most 10,000 events per sweep; the rest wait for the next
		var res struct {
			ProcessID bitrix.Text `json:"process_id"`
			Events    []struct {
				Name string `json:"EVENT_NAME"`
				Data struct {
					Fields struct {
						ID bitrix.ID `json:"ID"`
					} `json:"FIELDS"`
				} `json:"EVENT_DATA"`
			} `json:"events"`
		}
		err := client.Call(ctx, "event.offline.get", map[string]any{"clear": 0, "limit": limit}, &res)
		if err != nil {
			return fmt.Errorf("get offline events: %w", err)
		}
		if len(res.Events) == 0 {
			return nil
		}
		for _, ev := range res.Events {
			if id := int64(ev.Data.Fields.ID); id > 0 {
				if err := q.Enqueue(ctx, memberID, Item{Event: ev.Name, LeadID: id}); err != nil {
					return err
				}
			}
		}
		err = client.Call(ctx, "event.offline.clear",
			map[string]any{"process_id": string(res.ProcessID)}, nil)
		if err != nil {
			return fmt.Errorf("clear offline events: %w", err)
		}
		if len(res.Events) < limit {
			return nil
		}
	}
	return nil
}

// leadIDs reads the IDs of a crm.lead.list page.
func leadIDs(raw json.RawMessage) ([]int64, error) {
	var rows []struct {
		ID bitrix.ID `json:"ID"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("read lead list: %w", err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = int64(r.ID)
	}
	return ids, nil
}

func slicesMax(ids []int64) int64 {
	var m int64
	for _, id := range ids {
		m = max(m, id)
	}
	return m
}
