package bitrixtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// obj is an ordered key/value tree node, like a PHP array: it keeps the order in which
// keys arrived (batch commands run in that order) and encodes to JSON the way PHP does
// (an empty array is [], keys 0..n-1 make a list).
type obj struct {
	keys []string
	m    map[string]any
}

func newObj() *obj { return &obj{m: make(map[string]any)} }

// set stores v under k, keeping the first position of k.
func (o *obj) set(k string, v any) *obj {
	if _, ok := o.m[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.m[k] = v
	return o
}

// get returns the value under k, matching k case-insensitively when there is no
// exact key (Bitrix24 accepts "id" and "ID", "fields" and "FIELDS").
func (o *obj) get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	if v, ok := o.m[k]; ok {
		return v, true
	}
	for _, key := range o.keys {
		if strings.EqualFold(key, k) {
			return o.m[key], true
		}
	}
	return nil, false
}

func (o *obj) len() int {
	if o == nil {
		return 0
	}
	return len(o.keys)
}

// nextIndex is the key PHP gives to "a[]": one past the largest integer key.
func (o *obj) nextIndex() string {
	n := 0
	for _, k := range o.keys {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return strconv.Itoa(n)
}

// isList reports whether the keys are exactly "0", "1", ... in order.
func (o *obj) isList() bool {
	for i, k := range o.keys {
		if k != strconv.Itoa(i) {
			return false
		}
	}
	return true
}

// MarshalJSON encodes o the way PHP's json_encode encodes an array.
func (o *obj) MarshalJSON() ([]byte, error) { return appendJSON(nil, o) }

// parseForm decodes a query string with PHP bracket keys ("fields[PHONE][0][VALUE]=1",
// "select[]=ID") into o, in the order the pairs appear.
func parseForm(raw string, o *obj) error {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return fmt.Errorf("decode key %q: %w", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return fmt.Errorf("decode value of %q: %w", key, err)
		}
		setBracketed(o, key, val)
	}
	return nil
}

// setBracketed stores val at the path named by a PHP bracket key.
func setBracketed(o *obj, key, val string) {
	name, rest, nested := strings.Cut(key, "[")
	if !nested || name == "" {
		o.set(key, val)
		return
	}
	path := []string{name}
	rest = "[" + rest
	for strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	node := o
	for i, seg := range path {
		if seg == "" {
			seg = node.nextIndex()
		}
		if i == len(path)-1 {
			node.set(seg, val)
			return
		}
		child, ok := node.m[seg].(*obj)
		if !ok {
			child = newObj()
			node.set(seg, child)
		}
		node = child
	}
}

// parseJSON decodes a JSON body into an ordered tree; objects become *obj, arrays
// []any, numbers json.Number.
func parseJSON(r io.Reader) (*obj, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*obj)
	if !ok {
		if v == nil {
			return newObj(), nil
		}
		return nil, fmt.Errorf("body is not a JSON object")
	}
	return o, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObj()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				o.set(kt.(string), v)
			}
			_, err := dec.Token()
			return o, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// fromGo turns values handed over by Go callers (map[string]any, []map[string]any,
// ints) into the tree the REST layer works with.
func fromGo(v any) any {
	switch t := v.(type) {
	case map[string]any:
		o := newObj()
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.set(k, fromGo(t[k]))
		}
		return o
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, s := range t {
			m[k] = s
		}
		return fromGo(m)
	case []map[string]string:
		list := make([]any, len(t))
		for i, e := range t {
			list[i] = fromGo(e)
		}
		return list
	case []map[string]any:
		list := make([]any, len(t))
		for i, e := range t {
			list[i] = fromGo(e)
		}
		return list
	case []string:
		list := make([]any, len(t))
		for i, e := range t {
			list[i] = e
		}
		return list
	case []int:
		list := make([]any, len(t))
		for i, e := range t {
			list[i] = strconv.Itoa(e)
		}
		return list
	case []any:
		list := make([]any, len(t))
		for i, e := range t {
			list[i] = fromGo(e)
		}
		return list
	default:
		return v
	}
}

// str renders a scalar the way PHP turns it into a string.
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		if t {
			return "1"
		}
		return ""
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case time.Time:
		return t.Format(time.RFC3339)
	case fmt.Stringer:
		return t.String()
	default:
		return fmt.Sprint(v)
	}
}

// list returns the elements of an array value; a scalar is a one-element list.
func list(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	case *obj:
		out := make([]any, 0, len(t.keys))
		for _, k := range t.keys {
			out = append(out, t.m[k])
		}
		return out
	default:
		return []any{v}
	}
}

// intOf parses an integer parameter; ok is false when v is absent or not a number.
func intOf(v any) (int, bool) {
	s := strings.TrimSpace(str(v))
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, false
		}
		return int(f), true
	}
	return n, true
}

// truthy reads Bitrix24's many spellings of a boolean parameter.
func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case nil:
		return false
	}
	switch strings.ToUpper(strings.TrimSpace(str(v))) {
	case "", "0", "N", "FALSE", "NO":
		return false
	}
	return true
}
