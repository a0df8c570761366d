package bitrix

import (
	"encoding/json"
	"testing"
)

func TestIDUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ID
		wantErr bool
	}{
		{name: "number", in: `5`, want: 5},
		{name: "string", in: `"5"`, want: 5},
		{name: "large", in: `"9007199254740993"`, want: 9007199254740993},
		{name: "empty string", in: `""`, want: 0},
		{name: "null", in: `null`, want: 0},
		{name: "padded string", in: `" 17 "`, want: 17},
		{name: "negative", in: `-1`, want: -1},
		{name: "word", in: `"abc"`, wantErr: true},
		{name: "fraction", in: `1.5`, wantErr: true},
		{name: "object", in: `{}`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ID
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Unmarshal(%s) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestIDMarshalsAsNumber(t *testing.T) {
	b, err := json.Marshal(map[string]ID{"ID": 12})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"ID":12}` {
		t.Errorf("Marshal() = %s, want {\"ID\":12}", b)
	}
}

func TestLegacyRow(t *testing.T) {
	// A crm.lead.get row as legacy methods send it, next to crm.item's shape.
	legacy := `{"ID":"7","ASSIGNED_BY_ID":"1","OPENED":"Y","OPPORTUNITY":"15000.00","TITLE":null}`
	item := `{"ID":7,"ASSIGNED_BY_ID":1,"OPENED":true,"OPPORTUNITY":15000.00,"TITLE":"x"}`
	type row struct {
		ID          ID
		AssignedBy  ID `json:"ASSIGNED_BY_ID"`
		Opened      Bool
		Opportunity Text
		Title       Text
	}
	tests := []struct {
		name string
		in   string
		want row
	}{
		{name: "legacy strings", in: legacy,
			want: row{ID: 7, AssignedBy: 1, Opened: true, Opportunity: "15000.00"}},
		{name: "numbers and booleans", in: item,
			want: row{ID: 7, AssignedBy: 1, Opened: true, Opportunity: "15000.00", Title: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got row
			if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
				t.Fatalf("Unmarshal() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("Unmarshal() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBoolUnmarshal(t *testing.T) {
	tests := []struct {
		in      string
		want    Bool
		wantErr bool
	}{
		{in: `"Y"`, want: true}, {in: `"N"`}, {in: `true`, want: true}, {in: `false`},
		{in: `"1"`, want: true}, {in: `0`}, {in: `1`, want: true}, {in: `null`}, {in: `""`},
		{in: `"maybe"`, wantErr: true}, {in: `[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Bool
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Unmarshal(%s) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in      string
		want    ID
		wantErr bool
	}{
		{in: "5", want: 5}, {in: "", want: 0}, {in: "x", wantErr: true}, {in: "5.0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseID(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseID(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
