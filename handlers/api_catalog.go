package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
)

// catalogView is what the rule editor offers: the portal's lead sources and
// statuses (crm.status.list), its custom lead fields (crm.lead.fields), and people.
type catalogView struct {
	Sources  []choiceView `json:"sources"`
	Statuses []choiceView `json:"statuses"`
	Fields   []fieldView  `json:"fields"`
	Users    []personView `json:"users"`
}

type choiceView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type fieldView struct {
	ID    string       `json:"id"`
	Title string       `json:"title"`
	Type  string       `json:"type"`
	Items []choiceView `json:"items,omitempty"`
}

// getCatalog reads the portal's lists in one batch request with the portal's own
// client, so the browser never needs a portal token.
func (s *Settings) getCatalog(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	cmds := []bitrix.Command{
		{ID: "sources", Method: "crm.status.list",
			Params: map[string]any{"filter": map[string]any{"ENTITY_ID": "SOURCE"}}},
		{ID: "statuses", Method: "crm.status.list",
			Params: map[string]any{"filter": map[string]any{"ENTITY_ID": "STATUS"}}},
		{ID: "fields", Method: "crm.lead.fields"},
	}
	res, err := s.cfg.Portals.Client(sess.MemberID).Batch(ctx, cmds, false)
	if err != nil {
		return fmt.Errorf("read catalog of portal %s: %w", sess.MemberID, err)
	}
	out := catalogView{Sources: statusChoices(res.Result["sources"]),
		Statuses: statusChoices(res.Result["statuses"]), Fields: customFields(res.Result["fields"])}
	for id, e := range res.Errors {
		s.log.WarnContext(ctx, "catalog list failed", "member_id", sess.MemberID,
			"list", id, "error", e)
	}
	out.Users, _ = s.people(ctx, sess.MemberID)
	if out.Users == nil {
		out.Users = []personView{}
	}
	return jsonOK(c, out)
}

// statusChoices reads crm.status.list rows.
func statusChoices(raw json.RawMessage) []choiceView {
	var rows []struct {
		StatusID string `json:"STATUS_ID"`
		Name     string `json:"NAME"`
	}
	json.Unmarshal(raw, &rows)
	out := make([]choiceView, 0, len(rows))
	for _, r := range rows {
		out = append(out, choiceView{ID: r.StatusID, Name: r.Name})
	}
	return out
}

// customFields reads the UF_CRM_* fields of crm.lead.fields, with the values of
// list fields.
func customFields(raw json.RawMessage) []fieldView {
	var fields map[string]struct {
		Type      string `json:"type"`
		Title     string `json:"title"`
		FormLabel string `json:"formLabel"`
		ListLabel string `json:"listLabel"`
		Items     []struct {
			ID    bitrix.ID `json:"ID"`
			Value string    `json:"VALUE"`
		} `json:"items"`
	}
	json.Unmarshal(raw, &fields)
	out := []fieldView{}
	for code, f := range fields {
		if !strings.HasPrefix(code, "UF_CRM_") {
			continue
		}
		title := f.FormLabel
		if title == "" {
			title = f.ListLabel
		}
		if title == "" || title == code {
			title = f.Title
		}
		fv := fieldView{ID: code, Title: title, Type: f.Type}
		for _, it := range f.Items {
			fv.Items = append(fv.Items, choiceView{ID: fmt.Sprint(int64(it.ID)), Name: it.Value})
		}
		out = append(out, fv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// peopleTTL is how long the settings page reuses a portal's list of users, so
// that switching tabs does not spend the portal's REST budget.
const peopleTTL = time.Minute

// peopleCache keeps each portal's users for peopleTTL.
type peopleCache struct {
	mu      sync.Mutex // guards entries
	entries map[string]peopleEntry
}

type peopleEntry struct {
	people []personView
	at     time.Time
}

func (c *peopleCache) get(memberID string, now time.Time) ([]personView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[memberID]
	if !ok || now.Sub(e.at) > peopleTTL {
		return nil, false
	}
	return e.people, true
}

func (c *peopleCache) put(memberID string, people []personView, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > 10000 {
		c.entries = map[string]peopleEntry{}
	}
	c.entries[memberID] = peopleEntry{people: people, at: now}
}

// people lists the portal's users with their names, for naming team members,
// authors and readers. The list is reused for peopleTTL.
func (s *Settings) people(ctx context.Context, memberID string) ([]personView, error) {
	if people, ok := s.peopleCache.get(memberID, s.now()); ok {
		return people, nil
	}
	var out []personView
	err := s.cfg.Portals.Client(memberID).List(ctx, "user.get",
		map[string]any{"filter": map[string]any{"USER_TYPE": "employee"}},
		func(items json.RawMessage) error {
			var rows []struct {
				ID       bitrix.ID `json:"ID"`
				Active   bool      `json:"ACTIVE"`
				Name     string    `json:"NAME"`
				LastName string    `json:"LAST_NAME"`
			}
			if err := json.Unmarshal(items, &rows); err != nil {
				return err
			}
			for _, r := range rows {
				out = append(out, personView{ID: int64(r.ID), Active: r.Active,
					Name: strings.TrimSpace(r.Name + " " + r.LastName)})
			}
			return nil
		})
	if err != nil {
		s.log.WarnContext(ctx, "list portal users failed", "member_id", memberID, "error", err)
		return nil, err
	}
	s.peopleCache.put(memberID, out, s.now())
	return out, nil
}

// peopleNames maps the people's IDs to names.
func peopleNames(people []personView, _ error) map[int64]string {
	names := make(map[int64]string, len(people))
	for _, p := range people {
		names[p.ID] = p.Name
	}
	return names
}

// readersKey is the Redis set of allowed readers.
func readersKey(memberID string) string { return keyspace.SettingsReaders(memberID) }
