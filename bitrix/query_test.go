package bitrix

import (
	"net/url"
	"testing"
	"time"
)

func TestEncodeQuery(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{name: "empty", params: nil, want: ""},
		{name: "scalars", params: map[string]any{"id": 5, "halt": true, "off": false, "f": 1.5},
			want: "f=1.5&halt=1&id=5&off=0"},
		{name: "nested filter with operator keys",
			params: map[string]any{"filter": map[string]any{">ID": 5, "=STATUS_ID": "NEW"}},
			want:   "filter[%3DSTATUS_ID]=NEW&filter[%3EID]=5"},
		{name: "list with explicit indexes",
			params: map[string]any{"select": []string{"ID", "TITLE"}},
			want:   "select[0]=ID&select[1]=TITLE"},
		{name: "list of objects",
			params: map[string]any{"fields": map[string]any{
				"PHONE": []map[string]string{{"VALUE": "+1 555", "VALUE_TYPE": "WORK"}}}},
			want: "fields[PHONE][0][VALUE]=%2B1+555&fields[PHONE][0][VALUE_TYPE]=WORK"},
		{name: "nil values left out", params: map[string]any{"a": nil, "b": "x"}, want: "b=x"},
		{name: "id as number", params: map[string]any{"id": ID(42)}, want: "id=42"},
		{name: "time in RFC 3339",
			params: map[string]any{"since": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
			want:   "since=2026-01-02T03%3A04%3A05Z"},
		{name: "reference kept literal",
			params: map[string]any{"ID": "$result[get_user][UF_DEPARTMENT][0]"},
			want:   "ID=$result[get_user][UF_DEPARTMENT][0]"},
		{name: "reference inside text",
			params: map[string]any{"MESSAGE": "lead $result[add][ID] & co"},
			want:   "MESSAGE=lead+$result[add][ID]+%26+co"},
		{name: "other reference kinds",
			params: map[string]any{"a": "$next[list]", "b": "$total[list]"},
			want:   "a=$next[list]&b=$total[list]"},
		{name: "dollar without reference escaped",
			params: map[string]any{"price": "$5 [x]"},
			want:   "price=%245+%5Bx%5D"},
		{name: "bracket in key escaped", params: map[string]any{"a[b]": "c"}, want: "a%5Bb%5D=c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeQuery(tt.params)
			if err != nil {
				t.Fatalf("EncodeQuery() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("EncodeQuery() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeQueryDecodesAsPHPWould(t *testing.T) {
	params := map[string]any{
		"filter": map[string]any{">=DATE_CREATE": "2024-01-01T00:00:00+02:00", "%TITLE": "a&b=c"},
		"order":  map[string]string{"ID": "ASC"},
	}
	q, err := EncodeQuery(params)
	if err != nil {
		t.Fatalf("EncodeQuery() error = %v", err)
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		t.Fatalf("ParseQuery(%q) error = %v", q, err)
	}
	want := map[string]string{
		"filter[>=DATE_CREATE]": "2024-01-01T00:00:00+02:00",
		"filter[%TITLE]":        "a&b=c",
		"order[ID]":             "ASC",
	}
	for k, v := range want {
		if got := vals.Get(k); got != v {
			t.Errorf("ParseQuery(%q)[%q] = %q, want %q", q, k, got, v)
		}
	}
	if len(vals) != len(want) {
		t.Errorf("ParseQuery(%q) has %d keys, want %d", q, len(vals), len(want))
	}
}

func TestEncodeQueryRejects(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
	}{
		{name: "struct", params: map[string]any{"x": struct{ A int }{1}}},
		{name: "int keys", params: map[string]any{"x": map[int]string{1: "a"}}},
		{name: "func", params: map[string]any{"x": func() {}}},
		{name: "nested struct", params: map[string]any{"x": []any{struct{}{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := EncodeQuery(tt.params); err == nil {
				t.Errorf("EncodeQuery() = %q, want an error", got)
			}
		})
	}
}
