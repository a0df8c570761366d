package bitrix

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EncodeQuery writes params as a PHP query string with bracket keys, the form
// the portal parses inside a batch command:
//
//	{"filter": {">ID": 5}, "select": ["ID", "TITLE"]}
//	→ filter[>ID]=5&select[0]=ID&select[1]=TITLE
//
// Map keys are written in sorted order, slices with explicit indexes, true and
// false as 1 and 0, times in RFC 3339; nil values are left out, as PHP does.
// Batch references such as $result[get_lead][ASSIGNED_BY_ID] inside string
// values are kept as they are, so that the portal can substitute them.
func EncodeQuery(params map[string]any) (string, error) {
	var pairs []string
	for _, k := range sortedKeys(params) {
		var err error
		pairs, err = appendPairs(pairs, escapeKey(k), reflect.ValueOf(params[k]))
		if err != nil {
			return "", err
		}
	}
	return strings.Join(pairs, "&"), nil
}

func appendPairs(pairs []string, key string, v reflect.Value) ([]string, error) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return pairs, nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return pairs, nil
	}
	if s, ok, err := scalarText(v); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", key, err)
		}
		return append(pairs, key+"="+escapeValue(s)), nil
	}
	switch v.Kind() {
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("encode %s: map keys must be strings", key)
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, mk := range keys {
			var err error
			sub := key + "[" + escapeKey(mk.String()) + "]"
			if pairs, err = appendPairs(pairs, sub, v.MapIndex(mk)); err != nil {
				return nil, err
			}
		}
		return pairs, nil
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			var err error
			sub := key + "[" + strconv.Itoa(i) + "]"
			if pairs, err = appendPairs(pairs, sub, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return pairs, nil
	}
	return nil, fmt.Errorf("encode %s: unsupported type %s", key, v.Type())
}

// scalarText returns the query text of a scalar value; ok is false for maps,
// slices and other composite values.
func scalarText(v reflect.Value) (s string, ok bool, err error) {
	switch x := v.Interface().(type) {
	case time.Time:
		return x.Format(time.RFC3339), true, nil
	case json.Number:
		return x.String(), true, nil
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), true, nil
	case reflect.Bool:
		if v.Bool() {
			return "1", true, nil
		}
		return "0", true, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), true, nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64), true, nil
	case reflect.Struct:
		return "", false, fmt.Errorf("unsupported type %s", v.Type())
	}
	return "", false, nil
}

// batchRef matches a batch reference: $result[cmd][FIELD][0] and its relatives.
var batchRef = regexp.MustCompile(`\$(result|next|total|time|error)(\[[^\[\]&=]*\])+`)

// escapeValue query-escapes s but keeps batch references literal.
func escapeValue(s string) string {
	locs := batchRef.FindAllStringIndex(s, -1)
	if locs == nil {
		return url.QueryEscape(s)
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		b.WriteString(url.QueryEscape(s[last:l[0]]))
		b.WriteString(s[l[0]:l[1]])
		last = l[1]
	}
	b.WriteString(url.QueryEscape(s[last:]))
	return b.String()
}

// escapeKey escapes a key part; brackets are escaped too, so that a key cannot
// change the nesting its value ends up in.
func escapeKey(k string) string { return url.QueryEscape(k) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
