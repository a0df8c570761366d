package bitrixtest

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"empty obj is a PHP empty array", newObj(), `[]`},
		{"sequential keys make a list", newObj().set("0", "a").set("1", nil), `["a",null]`},
		{"other keys keep their order", newObj().set("b", 1).set("a", true), `{"b":1,"a":true}`},
		{"escapes", "q\"\\\n\x01é<", `"q\"\\\n\u0001é<"`},
		{"invalid utf-8", "a\xffb", `"a\ufffdb"`},
		{"map sorted", map[string]any{"z": []int{1}, "a": []string{"x"}}, `{"a":["x"],"z":[1]}`},
		{"number", json.Number("12.50"), `12.50`},
		{"float", 0.25, `0.25`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendJSON(nil, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var want, have any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatalf("bad want %s: %v", tt.want, err)
			}
			if err := json.Unmarshal(got, &have); err != nil {
				t.Fatalf("appendJSON wrote invalid JSON %s: %v", got, err)
			}
			wantJSON, _ := json.Marshal(want)
			haveJSON, _ := json.Marshal(have)
			if string(wantJSON) != string(haveJSON) {
				t.Errorf("appendJSON = %s, want %s", got, tt.want)
			}
			if tt.name == "other keys keep their order" && string(got) != tt.want {
				t.Errorf("key order lost: %s", got)
			}
		})
	}
}
