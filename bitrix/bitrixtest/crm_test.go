package bitrixtest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLeadLegacyShape(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{UserFields: []UserField{
		{Code: "UF_CRM_REGION", Type: "string"}, {Code: "UF_CRM_TAGS", Type: "string",
			Multiple: true}}})
	tok := p.Tokens(1)
	add := postJSON(t, p.ClientEndpoint(), "crm.lead.add", tok.AccessToken, map[string]any{
		"fields": map[string]any{"TITLE": "IP Titov", "NAME": "Gleb", "OPPORTUNITY": 12500,
			"ASSIGNED_BY_ID": 1, "PHONE": []map[string]any{{"VALUE": "555888",
				"VALUE_TYPE": "WORK"}}, "UF_CRM_REGION": "north", "UF_CRM_UNKNOWN": "dropped"},
		"params": map[string]any{"REGISTER_SONET_EVENT": "Y"}})
	if add.Status != 200 {
		t.Fatalf("crm.lead.add = %d %s", add.Status, add.Raw)
	}
	if _, isNumber := add.Body["result"].(float64); !isNumber {
		t.Fatalf("crm.lead.add result = %v, want the new ID as a number", add.Body["result"])
	}
	id := int(add.Body["result"].(float64))
	get := postJSON(t, p.ClientEndpoint(), "crm.lead.get", tok.AccessToken,
		map[string]any{"id": strconv.Itoa(id)})
	lead := get.Body["result"].(map[string]any)
	want := map[string]any{"ID": strconv.Itoa(id), "TITLE": "IP Titov", "OPPORTUNITY": "12500.00",
		"ASSIGNED_BY_ID": "1", "STATUS_ID": "NEW", "STATUS_SEMANTIC_ID": "P", "HAS_PHONE": "Y",
		"HAS_EMAIL": "N", "UF_CRM_REGION": "north", "LAST_NAME": nil, "SOURCE_ID": nil,
		"UF_CRM_TAGS": false}
	for k, v := range want {
		if lead[k] != v {
			t.Errorf("%s = %#v, want %#v", k, lead[k], v)
		}
	}
	if _, ok := lead["UF_CRM_UNKNOWN"]; ok {
		t.Errorf("an undefined custom field was stored")
	}
	phone := lead["PHONE"].([]any)[0].(map[string]any)
	if phone["VALUE"] != "555888" || phone["TYPE_ID"] != "PHONE" || phone["ID"] == nil {
		t.Errorf("PHONE = %v", phone)
	}
	for _, tt := range []struct {
		name string
		id   any
		desc string
	}{{"missing", nil, "ID is not defined or invalid."}, {"unknown", 999, "Not found"}} {
		params := map[string]any{}
		if tt.id != nil {
			params["id"] = tt.id
		}
		a := postJSON(t, p.ClientEndpoint(), "crm.lead.get", tok.AccessToken, params)
		if a.Status != 400 || a.Body["error"] != "" || a.Body["error_description"] != tt.desc {
			t.Errorf("%s: crm.lead.get = %d %s", tt.name, a.Status, a.Raw)
		}
	}
}

func TestLeadListFilterOrderPaging(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Rate: -1})
	p := s.NewPortal(PortalOptions{Users: []User{{ID: 1, Admin: true}, {ID: 2}, {ID: 3}}})
	tok := p.Tokens(1)
	for i := 1; i <= 120; i++ {
		p.AddLead(1, map[string]any{"TITLE": "Lead " + strconv.Itoa(i),
			"ASSIGNED_BY_ID": 1 + i%3, "SOURCE_ID": []string{"WEB", "CALL"}[i%2],
			"OPPORTUNITY": i * 10})
	}
	list := func(params map[string]any) answer {
		t.Helper()
		a := postJSON(t, p.ClientEndpoint(), "crm.lead.list", tok.AccessToken, params)
		if a.Status != 200 {
			t.Fatalf("crm.lead.list = %d %s", a.Status, a.Raw)
		}
		return a
	}
	ids := func(a answer) []string {
		var out []string
		for _, r := range a.Body["result"].([]any) {
			out = append(out, r.(map[string]any)["ID"].(string))
		}
		return out
	}
	tests := []struct {
		name      string
		params    map[string]any
		wantCount int
		wantTotal any
		wantNext  any
		wantFirst string
	}{
		{"first page", map[string]any{}, 50, float64(120), float64(50), "1"},
		{"last page", map[string]any{"start": 100}, 20, float64(120), nil, "101"},
		{"no count", map[string]any{"start": -1, "order": map[string]any{"ID": "ASC"},
			"filter": map[string]any{">ID": 110}}, 10, float64(0), nil, "111"},
		{"equal and IN", map[string]any{"filter": map[string]any{"ASSIGNED_BY_ID": 2,
			"@SOURCE_ID": []string{"CALL"}}}, 20, float64(20), nil, "1"},
		{"range", map[string]any{"filter": map[string]any{">=OPPORTUNITY": 1000,
			"<OPPORTUNITY": 1100}}, 10, float64(10), nil, "100"},
		{"not", map[string]any{"filter": map[string]any{"!SOURCE_ID": "WEB"}}, 50,
			float64(60), float64(50), "1"},
		{"like", map[string]any{"filter": map[string]any{"%TITLE": "lead 11"}}, 11,
			float64(11), nil, "11"},
		{"desc", map[string]any{"order": map[string]any{"ID": "DESC"}}, 50, float64(120),
			float64(50), "120"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := list(tt.params)
			got := ids(a)
			if len(got) != tt.wantCount || a.Body["total"] != tt.wantTotal ||
				a.Body["next"] != tt.wantNext {
				t.Errorf("rows %d total %v next %v, want %d %v %v", len(got), a.Body["total"],
					a.Body["next"], tt.wantCount, tt.wantTotal, tt.wantNext)
			}
			if len(got) > 0 && got[0] != tt.wantFirst {
				t.Errorf("first ID = %s, want %s", got[0], tt.wantFirst)
			}
		})
	}
	sel := list(map[string]any{"select": []string{"ID", "TITLE", "PHONE"},
		"filter": map[string]any{"ID": 1}})
	row := sel.Body["result"].([]any)[0].(map[string]any)
	if len(row) != 2 || row["TITLE"] != "Lead 1" {
		t.Errorf("selected row = %v, want ID and TITLE only", row)
	}
}

func TestEmptyResultsArePHPArrays(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep, tok := in.portal.ClientEndpoint(), in.tok.AccessToken
	for _, m := range []string{"crm.lead.list", "app.option.get", "placement.get"} {
		a := postJSON(t, ep, m, tok, nil)
		if raw, _ := json.Marshal(a.Body["result"]); string(raw) != "[]" {
			t.Errorf("%s result = %s, want []", m, raw)
		}
	}
	dup := postJSON(t, ep, "crm.duplicate.findbycomm", tok,
		map[string]any{"type": "PHONE", "values": []string{"123"}})
	if raw, _ := json.Marshal(dup.Body["result"]); string(raw) != "[]" {
		t.Errorf("crm.duplicate.findbycomm without match = %s, want []", raw)
	}
}

func TestDuplicateFindByComm(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	contact := p.AddContact(2, "+1 (555) 010-2030", "Client@Example.com")
	company := p.AddCompany(3, "", "office@example.com")
	ep, tok := p.ClientEndpoint(), in.tok.AccessToken
	a := postJSON(t, ep, "crm.duplicate.findbycomm", tok, map[string]any{
		"entity_type": "CONTACT", "type": "PHONE", "values": []string{"15550102030"}})
	got := a.Body["result"].(map[string]any)["CONTACT"].([]any)
	if len(got) != 1 || got[0] != float64(contact) {
		t.Errorf("by phone = %s", a.Raw)
	}
	b := postJSON(t, ep, "crm.duplicate.findbycomm", tok, map[string]any{
		"type": "EMAIL", "values": []string{"client@example.com", "office@example.com"}})
	res := b.Body["result"].(map[string]any)
	if len(res) != 2 || res["COMPANY"].([]any)[0] != float64(company) {
		t.Errorf("by e-mail = %s", b.Raw)
	}
	owner := postJSON(t, ep, "crm.contact.get", tok, map[string]any{"id": contact})
	if owner.Body["result"].(map[string]any)["ASSIGNED_BY_ID"] != "2" {
		t.Errorf("crm.contact.get = %s", owner.Raw)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	ep, tok := p.ClientEndpoint(), in.tok.AccessToken
	lead := p.AddLead(2, map[string]any{"TITLE": "batched"})
	a := postJSON(t, ep, "batch", tok, map[string]any{"halt": 0, "cmd": map[string]any{
		"get_lead": "crm.lead.get?id=" + strconv.Itoa(lead),
		"owner":    "user.get?ID=$result[get_lead][ASSIGNED_BY_ID]",
		"missing":  "crm.lead.get?id=999",
		"list":     "crm.lead.list?select[]=ID",
		"nested":   "batch?cmd[a]=profile",
	}})
	if a.Status != 200 {
		t.Fatalf("batch = %d %s", a.Status, a.Raw)
	}
	res := a.Body["result"].(map[string]any)
	results := res["result"].(map[string]any)
	owner := results["owner"].([]any)[0].(map[string]any)
	if owner["ID"] != "2" {
		t.Errorf("$result substitution gave user %v, want 2", owner["ID"])
	}
	errs := res["result_error"].(map[string]any)
	if errs["missing"].(map[string]any)["error_description"] != "Not found" {
		t.Errorf("result_error[missing] = %v", errs["missing"])
	}
	if errs["nested"].(map[string]any)["error"] != "ERROR_BATCH_METHOD_NOT_ALLOWED" {
		t.Errorf("nested batch = %v", errs["nested"])
	}
	if res["result_total"].(map[string]any)["list"] != float64(1) {
		t.Errorf("result_total = %v", res["result_total"])
	}
	if raw, _ := json.Marshal(res["result_next"]); string(raw) != "[]" {
		t.Errorf("empty result_next = %s, want []", raw)
	}
	if _, ok := res["result_time"].(map[string]any)["get_lead"]; !ok {
		t.Errorf("result_time lacks get_lead")
	}
	reqs := in.srv.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "batch" || len(last.Batch) != 5 {
		t.Errorf("logged %v, want one batch of 5 commands", last)
	}
}

func TestBatchLimitsAndHalt(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep, tok := in.portal.ClientEndpoint(), in.tok.AccessToken
	cmds := map[string]any{}
	for i := range 52 {
		cmds["c"+strconv.Itoa(i)] = "profile"
	}
	a := postJSON(t, ep, "batch", tok, map[string]any{"cmd": cmds})
	res := a.Body["result"].(map[string]any)
	if n := len(res["result"].(map[string]any)); n != 50 {
		t.Errorf("ran %d commands, want 50", n)
	}
	errs := res["result_error"].(map[string]any)
	if len(errs) != 2 {
		t.Fatalf("result_error = %v, want 2 extra commands refused", errs)
	}
	for k, e := range errs {
		if e.(map[string]any)["error"] != "ERROR_BATCH_LENGTH_EXCEEDED" {
			t.Errorf("%s = %v", k, e)
		}
	}
	halted := postJSON(t, ep, "batch", tok, map[string]any{"halt": 1, "cmd": []string{
		"crm.lead.get?id=999", "profile"}})
	hres := halted.Body["result"].(map[string]any)
	if raw, _ := json.Marshal(hres["result"]); string(raw) != "[]" {
		t.Errorf("halted batch result = %s, want []", raw)
	}
	if raw, _ := json.Marshal(hres["result_error"]); string(raw) !=
		`[{"error":"","error_description":"Not found"}]` {
		t.Errorf("numeric-key result_error = %s, want a PHP list", raw)
	}
}

func TestStatusListAndFields(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	ep, tok := in.portal.ClientEndpoint(), in.tok.AccessToken
	for _, tt := range []struct {
		entity string
		want   []string
	}{
		{"STATUS", []string{"NEW", "IN_PROCESS", "PROCESSED", "CONVERTED", "JUNK"}},
		{"SOURCE", []string{"CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER",
			"RECOMMENDATION", "TRADE_SHOW", "WEBFORM", "CALLBACK", "RC_GENERATOR", "STORE",
			"OTHER"}},
	} {
		a := postJSON(t, ep, "crm.status.list", tok,
			map[string]any{"filter": map[string]any{"ENTITY_ID": tt.entity}})
		var got []string
		for _, r := range a.Body["result"].([]any) {
			got = append(got, r.(map[string]any)["STATUS_ID"].(string))
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("crm.status.list %s = %v, want %v", tt.entity, got, tt.want)
		}
	}
	f := postJSON(t, ep, "crm.lead.fields", tok, nil).Body["result"].(map[string]any)
	status := f["STATUS_ID"].(map[string]any)
	if status["type"] != "crm_status" || status["statusType"] != "STATUS" {
		t.Errorf("STATUS_ID field = %v", status)
	}
	if f["PHONE"].(map[string]any)["isMultiple"] != true {
		t.Errorf("PHONE field = %v", f["PHONE"])
	}
	if f["ID"].(map[string]any)["isReadOnly"] != true {
		t.Errorf("ID field = %v", f["ID"])
	}
}

func TestTimelineAndNotifications(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	ep, tok := p.ClientEndpoint(), in.tok.AccessToken
	lead := p.AddLead(1, nil)
	a := postJSON(t, ep, "crm.timeline.comment.add", tok, map[string]any{"fields": map[string]any{
		"ENTITY_ID": lead, "ENTITY_TYPE": "lead", "COMMENT": "Routed to Boris: round robin"}})
	if _, ok := a.Body["result"].(float64); !ok {
		t.Errorf("crm.timeline.comment.add = %s, want the comment ID", a.Raw)
	}
	if got := p.Timeline(lead); len(got) != 1 || got[0] != "Routed to Boris: round robin" {
		t.Errorf("Timeline = %v", got)
	}
	missing := postJSON(t, ep, "crm.timeline.comment.add", tok, map[string]any{
		"fields": map[string]any{"ENTITY_ID": 999, "ENTITY_TYPE": "lead", "COMMENT": "x"}})
	if missing.Status != 400 {
		t.Errorf("comment on a missing lead = %d", missing.Status)
	}
	n := postJSON(t, ep, "im.notify.system.add", tok,
		map[string]any{"USER_ID": 2, "MESSAGE": "New lead for you"})
	if _, ok := n.Body["result"].(float64); !ok {
		t.Errorf("im.notify.system.add = %s", n.Raw)
	}
	if got := p.Notifications(2); len(got) != 1 || got[0] != "New lead for you" {
		t.Errorf("Notifications = %v", got)
	}
}

func TestAddLeadFromGoValues(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	created := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	id := p.AddLead(1, map[string]any{
		"TITLE": "old lead", "DATE_CREATE": created, "OPPORTUNITY": 99.5,
		"EMAIL": []map[string]string{{"VALUE": "a@example.com", "VALUE_TYPE": "HOME"}},
	})
	lead, _ := p.Lead(id)
	if lead["DATE_CREATE"] != "2026-03-01T09:30:00+00:00" || lead["OPPORTUNITY"] != "99.50" {
		t.Errorf("lead = %v", lead)
	}
	email := lead["EMAIL"].([]any)[0].(map[string]any)
	if email["VALUE"] != "a@example.com" || email["VALUE_TYPE"] != "HOME" {
		t.Errorf("EMAIL = %v", email)
	}
}

func TestLeadSnapshotMatchesRESTAnswer(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{UserFields: []UserField{{Code: "UF_CRM_A", Type: "string"},
		{Code: "UF_CRM_B", Type: "string", Multiple: true}, {Code: "UF_CRM_C", Type: "boolean"}}})
	tok := p.Tokens(1)
	id := p.AddLead(1, map[string]any{"TITLE": "t", "UF_CRM_B": []string{"x", "y"},
		"UF_CRM_C": "Y", "PHONE": []map[string]any{{"VALUE": "1"}, {"VALUE": "2"}}})
	a := postJSON(t, p.ClientEndpoint(), "crm.lead.get", tok.AccessToken, map[string]any{"id": id})
	got, _ := p.Lead(id)
	if diff := cmp.Diff(a.Body["result"], any(got)); diff != "" {
		t.Errorf("Lead() differs from crm.lead.get (-rest +Lead):\n%s", diff)
	}
}

func TestCountLeadsAndLeadField(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	for i := range 5 {
		p.AddLead(1, map[string]any{"ASSIGNED_BY_ID": 1 + i%2})
	}
	if n := p.CountLeads("ASSIGNED_BY_ID", "1"); n != 3 {
		t.Errorf("CountLeads(ASSIGNED_BY_ID, 1) = %d, want 3", n)
	}
	if n := p.CountLeads("SOURCE_ID", ""); n != 5 {
		t.Errorf("CountLeads(SOURCE_ID, \"\") = %d, want 5", n)
	}
	if v, ok := p.LeadField(2, "ASSIGNED_BY_ID"); !ok || v != "2" {
		t.Errorf("LeadField(2, ASSIGNED_BY_ID) = %q, %v", v, ok)
	}
	if _, ok := p.LeadField(99, "ID"); ok {
		t.Errorf("LeadField of a missing lead reported ok")
	}
}
