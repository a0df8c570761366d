package queue

import (
	"context"
	"fmt"
	"slices"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/routing"
)

// Returning clients. A lead whose phone or e-mail belongs to a contact, a company
// or another open lead goes to that record's owner when the settings ask for it.
// The look-up takes two steps: crm.duplicate.findbycomm for every lead in one batch
// (the portal matches phone numbers whatever their format), then, only for leads
// that matched, the owners of the records found, in a second batch. A contact wins
// over a company and a company over an open lead; among records of one kind, the
// oldest. Records owned by the person the lead arrived with are passed over.

// maxCommValues is how many phones or e-mails one crm.duplicate.findbycomm takes.
const maxCommValues = 20

// ClientCommands returns the look-up commands of the first step for one lead,
// named after key; none when the lead has neither phone nor e-mail.
func ClientCommands(key string, lead routing.Lead) []bitrix.Command {
	var cmds []bitrix.Command
	for _, c := range []struct {
		typ    string
		values []string
	}{{"PHONE", lead.Phones}, {"EMAIL", lead.Emails}} {
		if len(c.values) == 0 {
			continue
		}
		cmds = append(cmds, bitrix.Command{ID: key + c.typ[:1], Method: "crm.duplicate.findbycomm",
			Params: map[string]any{"type": c.typ,
				"values": c.values[:min(len(c.values), maxCommValues)]}})
	}
	return cmds
}

// clientKinds are the kinds of records a returning client may have, in the order
// their owners are preferred.
var clientKinds = []struct {
	name, method string
}{{"CONTACT", "crm.contact.list"}, {"COMPANY", "crm.company.list"}, {"LEAD", "crm.lead.list"}}

// ClientOwners finishes the look-up for the leads (by key) whose first-step
// commands ran in found: it reads the owners of the records found, in one batch
// when any were, and returns the owner of each lead that has one. A lead is never
// its own returning client; leads that are no longer open do not count.
func ClientOwners(ctx context.Context, client *bitrix.Client, found *bitrix.BatchResult,
	leads map[string]routing.Lead) (map[string]int64, error) {
	var cmds []bitrix.Command
	for key, lead := range leads {
		ids := map[string][]int64{}
		for _, suffix := range []string{"P", "E"} {
			var byKind map[string][]bitrix.ID
			if _, ran := found.Result[key+suffix]; !ran {
				continue
			}
			if err := found.Decode(key+suffix, &byKind); err != nil {
				continue // "[]": nothing matched
			}
			for kind, list := range byKind {
				for _, id := range list {
					self := kind == "LEAD" && int64(id) == lead.ID
					if !self && !slices.Contains(ids[kind], int64(id)) {
						ids[kind] = append(ids[kind], int64(id))
					}
				}
			}
		}
		for _, k := range clientKinds {
			if len(ids[k.name]) == 0 {
				continue
			}
			filter := map[string]any{"@ID": ids[k.name]}
			if k.name == "LEAD" {
				filter["STATUS_SEMANTIC_ID"] = "P"
			}
			cmds = append(cmds, bitrix.Command{ID: key + k.name, Method: k.method,
				Params: map[string]any{"filter": filter, "select": []string{"ID", "ASSIGNED_BY_ID"},
					"order": map[string]string{"ID": "ASC"}}})
		}
	}
	owners := map[string]int64{}
	if len(cmds) == 0 {
		return owners, nil
	}
	res, err := client.BatchAll(ctx, cmds, false)
	if err != nil {
		return nil, fmt.Errorf("read owners of existing clients: %w", err)
	}
	for key, lead := range leads {
		owners[key] = firstOwner(res, key, lead)
		if owners[key] == 0 {
			delete(owners, key)
		}
	}
	return owners, nil
}

// firstOwner picks the owner of the lead's returning client from the records read.
// A record owned by the person the lead arrived with does not count: that is the
// web form's or the integration's user, who owns every lead not yet routed.
func firstOwner(res *bitrix.BatchResult, key string, lead routing.Lead) int64 {
	for _, k := range clientKinds {
		var rows []struct {
			Owner bitrix.ID `json:"ASSIGNED_BY_ID"`
		}
		if _, ran := res.Result[key+k.name]; !ran || res.Decode(key+k.name, &rows) != nil {
			continue
		}
		for _, r := range rows {
			if owner := int64(r.Owner); owner > 0 && owner != lead.AssignedByID {
				return owner
			}
		}
	}
	return 0
}
