package bitrix_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

func TestPortalRename(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	ctx := t.Context()
	old := b.portal.ClientEndpoint()
	id := b.portal.AddLead(1, map[string]any{"TITLE": "before"})
	b.portal.Rename("acme-renamed")

	err := b.client.Call(ctx, "crm.lead.update",
		map[string]any{"id": id, "fields": map[string]any{"TITLE": "after"}}, nil)
	if err != nil {
		t.Fatalf("Call(crm.lead.update) after rename error = %v", err)
	}
	if l, _ := b.portal.Lead(id); fmt.Sprint(l["TITLE"]) != "after" {
		t.Errorf("lead TITLE = %v after the re-sent POST, want after", l["TITLE"])
	}
	_, moved, _ := b.auth.state()
	if want := []string{b.portal.ClientEndpoint()}; !slices.Equal(moved, want) || moved[0] == old {
		t.Errorf("Auth.Moved got %v, want %v (old endpoint %s)", moved, want, old)
	}

	if err := b.client.Call(ctx, "profile", nil, nil); err != nil {
		t.Fatalf("Call(profile) error = %v", err)
	}
	want := []string{"crm.lead.update 302 ", "crm.lead.update 200 ", "profile 200 "}
	if diff := cmp.Diff(want, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}
	if !strings.Contains(b.logs.String(), "portal moved") {
		t.Errorf("log does not report the move:\n%s", b.logs.String())
	}
}

// forgetfulAuth is an Auth whose store failed to record a move.
type forgetfulAuth struct{ *portalAuth }

func (forgetfulAuth) Moved(context.Context, string) error { return errors.New("redis down") }

func TestPortalRenameRememberedWhenAuthFails(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	b.portal.Rename("acme-renamed")
	c := bitrix.NewClient(b.portal.MemberID(), forgetfulAuth{b.auth}, bitrix.Options{})
	for range 2 {
		if err := c.Call(t.Context(), "profile", nil, nil); err != nil {
			t.Fatalf("Call(profile) error = %v", err)
		}
	}
	want := []string{"profile 302 ", "profile 200 ", "profile 200 "}
	if diff := cmp.Diff(want, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}
}

type user struct {
	ID   bitrix.ID   `json:"ID"`
	Name bitrix.Text `json:"NAME"`
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	ctx := t.Context()
	leadID := b.portal.AddLead(1, map[string]any{"TITLE": "Smith & Sons = 1", "ASSIGNED_BY_ID": 1})

	res, err := b.client.Batch(ctx, []bitrix.Command{
		{ID: "lead", Method: "crm.lead.get", Params: map[string]any{"id": leadID}},
		{ID: "owner", Method: "user.get", Params: map[string]any{"ID": "$result[lead][ASSIGNED_BY_ID]"}},
		{ID: "missing", Method: "crm.lead.get", Params: map[string]any{"id": 999999}},
		{ID: "found", Method: "crm.lead.list", Params: map[string]any{
			"filter": map[string]any{"%TITLE": "& Sons ="}, "select": []string{"ID", "TITLE"}}},
	}, false)
	if err != nil {
		t.Fatalf("Batch() error = %v", err)
	}

	var l lead
	if err := res.Decode("lead", &l); err != nil || l.ID != bitrix.ID(leadID) {
		t.Errorf("Decode(lead) = %+v, %v; want lead %d", l, err, leadID)
	}
	var owners []user
	if err := res.Decode("owner", &owners); err != nil || len(owners) != 1 || owners[0].ID != 1 {
		t.Errorf("Decode(owner) = %+v, %v; want user 1 through the $result reference", owners, err)
	}
	if err := res.Err("missing"); !errors.Is(err, bitrix.ErrNotFound) {
		t.Errorf("Err(missing) = %v, want ErrNotFound", err)
	}
	var found []lead
	if err := res.Decode("found", &found); err != nil || len(found) != 1 ||
		found[0].Title != "Smith & Sons = 1" {
		t.Errorf("Decode(found) = %+v, %v; want the lead found by a value with & and =", found, err)
	}
	if total, ok := res.Total["found"]; !ok || total != 1 {
		t.Errorf("Total[found] = %d, %v; want 1", total, ok)
	}
	if diff := cmp.Diff([]string{"batch 200 "}, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}
}

func TestBatchEmptySections(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	ctx := t.Context()

	ok, err := b.client.Batch(ctx, []bitrix.Command{{ID: "me", Method: "profile"}}, false)
	if err != nil {
		t.Fatalf("Batch(all succeed) error = %v", err)
	}
	if len(ok.Errors) != 0 || len(ok.Result) != 1 {
		t.Errorf("Batch(all succeed) = %d results, %d errors; want 1, 0", len(ok.Result), len(ok.Errors))
	}

	failed, err := b.client.Batch(ctx, []bitrix.Command{
		{ID: "a", Method: "crm.lead.get", Params: map[string]any{"id": 999998}},
		{ID: "b", Method: "crm.lead.get", Params: map[string]any{"id": 999999}},
	}, false)
	if err != nil {
		t.Fatalf("Batch(all fail) error = %v, want the failures per command", err)
	}
	if len(failed.Result) != 0 || len(failed.Errors) != 2 {
		t.Errorf("Batch(all fail) = %d results, %d errors; want 0, 2",
			len(failed.Result), len(failed.Errors))
	}
}

func TestBatchHalt(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	res, err := b.client.Batch(t.Context(), []bitrix.Command{
		{ID: "missing", Method: "crm.lead.get", Params: map[string]any{"id": 999999}},
		{ID: "add", Method: "crm.lead.add", Params: map[string]any{
			"fields": map[string]any{"TITLE": "must not exist"}}},
	}, true)
	if err != nil {
		t.Fatalf("Batch(halt) error = %v", err)
	}
	if err := res.Err("missing"); !errors.Is(err, bitrix.ErrNotFound) {
		t.Errorf("Err(missing) = %v, want ErrNotFound", err)
	}
	if err := res.Err("add"); err == nil || errors.Is(err, bitrix.ErrNotFound) {
		t.Errorf("Err(add) = %v, want \"did not run\"", err)
	}
	if n := len(b.portal.Leads()); n != 0 {
		t.Errorf("portal has %d leads after a halted batch, want 0", n)
	}
}

func TestBatchAllSplits(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	var cmds []bitrix.Command
	for i := range 120 {
		id := b.portal.AddLead(1, map[string]any{"TITLE": fmt.Sprintf("lead %d", i)})
		cmds = append(cmds, bitrix.Command{
			ID: fmt.Sprintf("l%d", id), Method: "crm.lead.get", Params: map[string]any{"id": id}})
	}
	res, err := b.client.BatchAll(t.Context(), cmds, false)
	if err != nil {
		t.Fatalf("BatchAll() error = %v", err)
	}
	if len(res.Result) != 120 || len(res.Errors) != 0 {
		t.Errorf("BatchAll() = %d results, %d errors; want 120, 0", len(res.Result), len(res.Errors))
	}
	want := []string{"batch 200 ", "batch 200 ", "batch 200 "}
	if diff := cmp.Diff(want, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}

	if _, err := b.client.Batch(t.Context(), cmds[:51], false); !errors.Is(err, bitrix.ErrBadBatch) {
		t.Errorf("Batch(51 commands) error = %v, want ErrBadBatch", err)
	}
	if n := len(b.requests()); n != 3 {
		t.Errorf("portal served %d requests, want the refused batch not sent", n)
	}
}

// addLeads adds n leads, those with i%3 == 0 titled "hot".
func addLeads(p *bitrixtest.Portal, n int) (hot []bitrix.ID) {
	for i := range n {
		title := "cold"
		if i%3 == 0 {
			title = "hot"
		}
		id := p.AddLead(1, map[string]any{"TITLE": title})
		if title == "hot" {
			hot = append(hot, bitrix.ID(id))
		}
	}
	return hot
}

func collectIDs(t *testing.T, into *[]bitrix.ID) func(json.RawMessage) error {
	return func(items json.RawMessage) error {
		var rows []lead
		if err := json.Unmarshal(items, &rows); err != nil {
			return err
		}
		for _, r := range rows {
			*into = append(*into, r.ID)
		}
		return nil
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	addLeads(b.portal, 120)
	var ids []bitrix.ID
	err := b.client.List(t.Context(), "crm.lead.list",
		map[string]any{"select": []string{"ID"}, "order": map[string]string{"ID": "ASC"}},
		collectIDs(t, &ids))
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	if len(ids) != 120 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != 120 {
		t.Errorf("List() read %d IDs (sorted %v), want 120 distinct", len(ids), slices.IsSorted(ids))
	}
	want := []string{"crm.lead.list 200 ", "crm.lead.list 200 ", "crm.lead.list 200 "}
	if diff := cmp.Diff(want, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}
}

func TestListAfterID(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	hot := addLeads(b.portal, 330) // 110 hot
	params := map[string]any{"select": []string{"ID", "TITLE"},
		"filter": map[string]any{"TITLE": "hot"}}
	var ids []bitrix.ID
	if err := b.client.ListAfterID(t.Context(), "crm.lead.list", params, collectIDs(t, &ids)); err != nil {
		t.Fatalf("ListAfterID() error = %v", err)
	}
	if diff := cmp.Diff(hot, ids); diff != "" {
		t.Errorf("ListAfterID() IDs (-want +got):\n%s", diff)
	}
	if n := len(b.requests()); n != 3 {
		t.Errorf("portal served %d requests, want 3 pages for 110 rows", n)
	}
	want := map[string]any{"select": []string{"ID", "TITLE"}, "filter": map[string]any{"TITLE": "hot"}}
	if diff := cmp.Diff(want, params); diff != "" {
		t.Errorf("ListAfterID() changed the caller's params (-want +got):\n%s", diff)
	}
}

func TestListStopsOnPageError(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	addLeads(b.portal, 120)
	stop := errors.New("enough")
	err := b.client.List(t.Context(), "crm.lead.list", nil, func(json.RawMessage) error { return stop })
	if !errors.Is(err, stop) || len(b.requests()) != 1 {
		t.Errorf("List() = %v after %d requests, want the page's error after 1", err, len(b.requests()))
	}
}

// TestLimiterKeepsInstancesInsidePortalBucket runs three app instances, each
// with its own Redis connection and client, against one portal enforcing the
// leaky bucket: together they must not be refused once.
func TestLimiterKeepsInstancesInsidePortalBucket(t *testing.T) {
	t.Parallel()
	const rate, burst, calls = 20, 10, 30
	b := setup(t, bitrixtest.Options{Rate: rate, Burst: burst}, bitrix.Options{})
	srv := redistest.Start(t)
	var clients []*bitrix.Client
	for range 3 {
		l := bitrix.NewRedisLimiter(srv.Client(t), rate, burst)
		clients = append(clients, bitrix.NewClient(b.portal.MemberID(), b.auth,
			bitrix.Options{Limiter: l, MaxRetries: -1}))
	}
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			if err := clients[i%3].Call(t.Context(), "profile", nil, nil); err != nil {
				t.Errorf("Call(profile) error = %v", err)
			}
		})
	}
	wg.Wait()
	for _, r := range b.requests() {
		if r != "profile 200 " {
			t.Errorf("portal answered %q, want every request let through", r)
		}
	}
	if n := len(b.requests()); n != calls {
		t.Errorf("portal served %d requests, want %d", n, calls)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{Timeout: 100 * time.Millisecond, MaxRetries: -1})
	b.srv.SetFaults(bitrixtest.Faults{Slow: 1, SlowBy: 5 * time.Second})
	began := time.Now()
	err := b.client.Call(t.Context(), "profile", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !bitrix.Temporary(err) {
		t.Errorf("Call(slow) error = %v, want a temporary deadline error", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Call(slow) returned after %v, want the request cut off by its timeout", took)
	}
}

func TestExpiredTokenUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	b.portal.ExpireAccessTokens()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := b.client.Call(t.Context(), "profile", nil, nil); err != nil {
				t.Errorf("Call(profile) error = %v", err)
			}
		})
	}
	wg.Wait()
	if n, _, _ := b.auth.state(); n != 1 {
		t.Errorf("refreshes = %d, want 1 for 20 calls with the same stale token", n)
	}
}

// restRequests reads leadrouter_rest_requests_total for one portal from the
// default registry, keyed "method outcome".
func restRequests(t *testing.T, memberID string) map[string]float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		if f.GetName() != "leadrouter_rest_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := make(map[string]string)
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["member_id"] == memberID {
				out[labels["method"]+" "+labels["outcome"]] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, bitrixtest.Options{}, bitrix.Options{})
	b.portal.ExpireAccessTokens()
	b.portal.Rename("acme-moved")
	if err := b.client.Call(t.Context(), "profile", nil, nil); err != nil {
		t.Fatalf("Call(profile) error = %v", err)
	}
	err := b.client.Call(t.Context(), "crm.lead.get", map[string]any{"id": 999999}, nil)
	if !errors.Is(err, bitrix.ErrNotFound) {
		t.Fatalf("Call(crm.lead.get) error = %v, want ErrNotFound", err)
	}
	want := map[string]float64{
		"profile moved":          1,
		"profile expired_token":  1,
		"crm.lead.get not_found": 1,
	}
	if diff := cmp.Diff(want, restRequests(t, b.portal.MemberID())); diff != "" {
		t.Errorf("leadrouter_rest_requests_total of the portal (-want +got):\n%s", diff)
	}
	// Successes are counted without the portal, among every test's.
	if ok := restRequests(t, "")["profile ok"]; ok < 1 {
		t.Errorf("leadrouter_rest_requests_total{member_id=\"\",profile,ok} = %v, want ≥ 1", ok)
	}
}

func TestBatchOperationLimitBlocksMethod(t *testing.T) {
	t.Parallel()
	limiter := bitrix.NewRedisLimiter(redistest.New(t), 100, 50)
	b := setup(t, bitrixtest.Options{}, bitrix.Options{Limiter: limiter})
	b.portal.AddOperatingTime("crm.lead.list", 481*time.Second)

	res, err := b.client.Batch(t.Context(), []bitrix.Command{
		{ID: "me", Method: "profile"},
		{ID: "leads", Method: "crm.lead.list"},
	}, false)
	if err != nil {
		t.Fatalf("Batch() error = %v", err)
	}
	var e *bitrix.Error
	if err := res.Err("leads"); !errors.As(err, &e) || !errors.Is(err, bitrix.ErrOperationLimit) ||
		e.ResetAt.IsZero() {
		t.Fatalf("Err(leads) = %v, want ErrOperationLimit with a reset time", err)
	}
	if err := res.Err("me"); err != nil {
		t.Errorf("Err(me) = %v, want nil: other methods keep working", err)
	}

	err = b.client.Call(t.Context(), "crm.lead.list", nil, nil)
	if !errors.Is(err, bitrix.ErrOperationLimit) {
		t.Errorf("Call(crm.lead.list) error = %v, want ErrOperationLimit", err)
	}
	if diff := cmp.Diff([]string{"batch 200 "}, b.requests()); diff != "" {
		t.Errorf("portal requests (-want +got):\n%s", diff)
	}
}
