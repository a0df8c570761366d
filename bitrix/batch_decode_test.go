package bitrix

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeBatch(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantResult map[string]string
		wantErrors map[string]string // command → code
		wantTotal  map[string]int
		wantNext   map[string]int
	}{
		{
			name: "documented success",
			in: `{"result":{"get_user":{"ID":"1"},"get_department":[{"ID":"1","NAME":"DEMO"}]},
				"result_error":[],"result_total":{"get_department":1},"result_next":[],
				"result_time":{"get_user":{"start":1.5}}}`,
			wantResult: map[string]string{"get_user": `{"ID":"1"}`,
				"get_department": `[{"ID":"1","NAME":"DEMO"}]`},
			wantErrors: map[string]string{},
			wantTotal:  map[string]int{"get_department": 1},
			wantNext:   map[string]int{},
		},
		{
			name: "every command failed",
			in: `{"result":[],"result_error":{"get_user":{"error":"insufficient_scope",
				"error_description":""},"lead":{"error":"","error_description":"Not found"}},
				"result_total":[],"result_next":[],"result_time":[]}`,
			wantResult: map[string]string{},
			wantErrors: map[string]string{"get_user": "insufficient_scope", "lead": ""},
			wantTotal:  map[string]int{},
			wantNext:   map[string]int{},
		},
		{
			name: "numeric IDs arrive as lists, next zero is legal",
			in: `{"result":[[{"ID":"1"}],{"ID":"2"}],"result_error":[],
				"result_total":["120","1"],"result_next":{"0":50,"1":0}}`,
			wantResult: map[string]string{"0": `[{"ID":"1"}]`, "1": `{"ID":"2"}`},
			wantErrors: map[string]string{},
			wantTotal:  map[string]int{"0": 120, "1": 1},
			wantNext:   map[string]int{"0": 50, "1": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := decodeBatch(json.RawMessage(tt.in))
			if err != nil {
				t.Fatalf("decodeBatch() error = %v", err)
			}
			got := make(map[string]string)
			for k, v := range res.Result {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tt.wantResult, got); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			codes := make(map[string]string)
			for k, e := range res.Errors {
				codes[k] = e.Code
			}
			if diff := cmp.Diff(tt.wantErrors, codes); diff != "" {
				t.Errorf("Errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTotal, res.Total); diff != "" {
				t.Errorf("Total (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNext, res.Next); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBatchResultErr(t *testing.T) {
	res, err := decodeBatch(json.RawMessage(`{"result":{"a":true},
		"result_error":{"b":{"error":"","error_description":"Not found"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err("a"); err != nil {
		t.Errorf("Err(a) = %v, want nil", err)
	}
	if err := res.Err("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Err(b) = %v, want ErrNotFound", err)
	}
	if err := res.Err("c"); err == nil {
		t.Errorf("Err(c) = nil, want an error for a command that did not run")
	}
	var ok bool
	if err := res.Decode("a", &ok); err != nil || !ok {
		t.Errorf("Decode(a) = %v, %v; want true, nil", ok, err)
	}
}

func TestBatchParams(t *testing.T) {
	// The keys are out of alphabetical order on purpose: the portal runs the
	// commands in the order the keys arrive.
	cmds := []Command{
		{ID: "lead", Method: "crm.lead.get", Params: map[string]any{"id": 5}},
		{ID: "assignee", Method: "user.get", Params: map[string]any{"ID": "$result[lead][ASSIGNED_BY_ID]"}},
	}
	params, read, err := batchParams(cmds, true)
	if err != nil {
		t.Fatalf("batchParams() error = %v", err)
	}
	body, err := json.Marshal(params)
	if err != nil {
		t.Fatalf("Marshal() error = %v", err)
	}
	want := `{"cmd":{"lead":"crm.lead.get?id=5",` +
		`"assignee":"user.get?ID=$result[lead][ASSIGNED_BY_ID]"},"halt":1}`
	if string(body) != want {
		t.Errorf("batch body = %s, want %s", body, want)
	}
	if !read {
		t.Errorf("batchParams() read = false, want true for get and list commands")
	}

	bad := []struct {
		name string
		cmds []Command
	}{
		{"no id", []Command{{Method: "profile"}}},
		{"repeated id", []Command{{ID: "a", Method: "profile"}, {ID: "a", Method: "profile"}}},
		{"no method", []Command{{ID: "a"}}},
		{"method with query", []Command{{ID: "a", Method: "crm.lead.get?id=1"}}},
		{"bad params", []Command{{ID: "a", Method: "x", Params: map[string]any{"f": struct{}{}}}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := batchParams(tt.cmds, false); !errors.Is(err, ErrBadBatch) {
				t.Errorf("batchParams() error = %v, want ErrBadBatch", err)
			}
		})
	}
}

func TestCheckReferences(t *testing.T) {
	many := func(n int, ref string) []Command {
		var cmds []Command
		for i := range n {
			cmds = append(cmds, Command{ID: "c" + strconv.Itoa(i), Method: "crm.lead.get",
				Params: map[string]any{"id": i + 1}})
		}
		cmds[n-1].Params = map[string]any{"id": ref}
		return cmds
	}
	tests := []struct {
		name    string
		cmds    []Command
		wantErr bool
	}{
		{name: "earlier command in the same batch", cmds: many(50, "$result[c0][ID]")},
		{name: "command in an earlier batch", cmds: many(51, "$result[c0][ID]"), wantErr: true},
		{name: "itself", cmds: many(2, "$result[c1][ID]"), wantErr: true},
		{name: "later command", cmds: []Command{
			{ID: "a", Method: "user.get", Params: map[string]any{"ID": "$result[b][ID]"}},
			{ID: "b", Method: "profile"},
		}, wantErr: true},
		{name: "unknown command", cmds: many(3, "$result[nope][ID]"), wantErr: true},
		{name: "earlier in the second batch", cmds: many(60, "$result[c55][ID]")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkReferences(tt.cmds)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrBadBatch)) {
				t.Errorf("checkReferences() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
