package bitrix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
)

// PageSize is the number of rows a portal returns per page of a list method.
const PageSize = 50

// List reads every page of a list method, paging with start and next, and
// hands each page's result to page as the portal sent it (an array for legacy
// methods, {"items": [...]} for crm.item.list). It stops at the first error,
// page's included. params is not modified.
func (c *Client) List(ctx context.Context, method string, params map[string]any,
	page func(items json.RawMessage) error) error {
	p := maps.Clone(params)
	if p == nil {
		p = make(map[string]any)
	}
	start := 0
	for {
		p["start"] = start
		resp, err := c.CallRaw(ctx, method, p)
		if err != nil {
			return err
		}
		if err := page(resp.Result); err != nil {
			return err
		}
		if resp.Next == nil {
			return nil
		}
		if *resp.Next <= start {
			return fmt.Errorf("list %s on portal %s: next %d does not advance past %d",
				method, c.memberID, *resp.Next, start)
		}
		start = *resp.Next
	}
}

// ListAfterID reads every row of a legacy list method (crm.lead.list and its
// relatives) the fast way: start=-1 so the portal does not count the rows,
// ordered by ID, each page asking for IDs above the last one seen, until a
// page is shorter than PageSize. The caller's filter is kept; order is
// replaced by ID ascending, and select, when given, must include ID.
func (c *Client) ListAfterID(ctx context.Context, method string, params map[string]any,
	page func(items json.RawMessage) error) error {
	p := maps.Clone(params)
	if p == nil {
		p = make(map[string]any)
	}
	filter, err := filterOf(p["filter"])
	if err != nil {
		return fmt.Errorf("list %s: %w", method, err)
	}
	p["filter"] = filter
	p["order"] = map[string]string{"ID": "ASC"}
	p["start"] = -1
	var last ID
	for {
		if last > 0 {
			filter[">ID"] = last
		}
		resp, err := c.CallRaw(ctx, method, p)
		if err != nil {
			return err
		}
		items, err := listItems(resp.Result)
		if err != nil {
			return fmt.Errorf("list %s on portal %s: %w", method, c.memberID, err)
		}
		if len(items) > 0 {
			if err := page(resp.Result); err != nil {
				return err
			}
		}
		if len(items) < PageSize {
			return nil
		}
		next, err := maxID(items)
		if err != nil {
			return fmt.Errorf("list %s on portal %s: %w", method, c.memberID, err)
		}
		if next <= last {
			return fmt.Errorf("list %s on portal %s: IDs do not advance past %d",
				method, c.memberID, last)
		}
		last = next
	}
}

// filterOf copies a caller's filter so that paging can add to it.
func filterOf(v any) (map[string]any, error) {
	switch f := v.(type) {
	case nil:
		return make(map[string]any), nil
	case map[string]any:
		return maps.Clone(f), nil
	case map[string]string:
		out := make(map[string]any, len(f))
		for k, v := range f {
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("filter must be a map with string keys, got %T", v)
}

// listItems returns the rows of a list result: a plain array, or the array
// under "items".
func listItems(raw json.RawMessage) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	var items []json.RawMessage
	if len(raw) > 0 && raw[0] == '{' {
		var wrapped struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return nil, fmt.Errorf("decode rows: %w", err)
		}
		return wrapped.Items, nil
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("decode rows: %w", err)
	}
	return items, nil
}

// maxID returns the largest ID among rows, read from "ID" or "id".
func maxID(items []json.RawMessage) (ID, error) {
	var top ID
	for _, raw := range items {
		var row struct {
			Upper *ID `json:"ID"`
			Lower *ID `json:"id"`
		}
		if err := json.Unmarshal(raw, &row); err != nil {
			return 0, fmt.Errorf("decode row: %w", err)
		}
		id := row.Upper
		if id == nil {
			id = row.Lower
		}
		if id == nil {
			return 0, fmt.Errorf("row without ID; select must include ID")
		}
		top = max(top, *id)
	}
	return top, nil
}
