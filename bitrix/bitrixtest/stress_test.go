package bitrixtest

import (
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentUse runs REST calls, UI changes, renames and token expiry at once; the
// race detector checks the locking, and every lead must get exactly one add event.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{Rate: -1}, "ONCRMLEADADD")
	p := in.portal
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 12 {
				tok := p.Tokens(1)
				postJSON(t, p.ClientEndpoint(), "crm.lead.add", tok.AccessToken,
					map[string]any{"fields": map[string]any{"TITLE": strconv.Itoa(w*100 + i)}})
				postJSON(t, p.ClientEndpoint(), "batch", tok.AccessToken, map[string]any{
					"cmd": map[string]any{"l": "crm.lead.list?start=-1", "u": "user.get"}})
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			p.AddLead(2, nil)
		}
	})
	wg.Go(func() {
		for i := range 5 {
			p.ExpireAccessTokens()
			p.Rename("acme-" + strconv.Itoa(i))
		}
	})
	wg.Wait()
	leads := p.LeadCount()
	ds := waitDeliveries(t, p, leads)
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.Form.Get("data[FIELDS][ID]")]++
	}
	if len(seen) != leads {
		t.Errorf("%d leads got add events, want %d", len(seen), leads)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("lead %s got %d add events", id, n)
		}
	}
}
