package routing

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// Change is one difference between two settings versions, at a field path such as
// "teams[0].members[2].weight". Old is empty for an added value, New for a removed
// one; values are written as JSON.
type Change struct {
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// String returns the change on one line, e.g. `teams[0].members[2].weight: 1 → 3`.
func (c Change) String() string {
	switch {
	case c.Old == "":
		return fmt.Sprintf("%s: added %s", c.Path, c.New)
	case c.New == "":
		return fmt.Sprintf("%s: removed %s", c.Path, c.Old)
	}
	return fmt.Sprintf("%s: %s → %s", c.Path, c.Old, c.New)
}

// DiffSettings lists the changes from a to b, in field order; a value that exists on
// one side only (a new team, a removed rule) is one change.
func DiffSettings(a, b *Settings) []Change {
	var out []Change
	diffValue(&out, "", generic(a), generic(b))
	return out
}

// generic returns the settings as JSON values, the same shape they are stored in.
func generic(s *Settings) any {
	body, err := json.Marshal(s)
	if err != nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil
	}
	return v
}

func diffValue(out *[]Change, path string, a, b any) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffValue(out, p, am[k], bm[k])
		}
		return
	}
	al, aIsList := a.([]any)
	bl, bIsList := b.([]any)
	if aIsList && bIsList {
		for i := range max(len(al), len(bl)) {
			var x, y any
			if i < len(al) {
				x = al[i]
			}
			if i < len(bl) {
				y = bl[i]
			}
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), x, y)
		}
		return
	}
	if reflect.DeepEqual(a, b) || isEmpty(a) && isEmpty(b) {
		return
	}
	*out = append(*out, Change{Path: path, Old: render(a), New: render(b)})
}

// render writes a value as compact JSON; nil is "".
func render(v any) string {
	if v == nil {
		return ""
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(body)
}

// isEmpty reports whether v is null, an empty list or an empty object.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}
