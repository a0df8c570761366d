package bitrixtest

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// appendJSON encodes the trees the REST layer answers with. It writes the common
// shapes (*obj, lists, maps, strings, numbers) itself, without the validation pass
// encoding/json makes over every Marshaler's output, and hands anything else to
// encoding/json.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return append(b, "null"...), nil
		}
		return strconv.AppendFloat(b, t, 'f', -1, 64), nil
	case *obj:
		return appendObj(b, t)
	case []any:
		return appendList(b, len(t), func(i int) any { return t[i] })
	case []string:
		return appendList(b, len(t), func(i int) any { return t[i] })
	case []int:
		return appendList(b, len(t), func(i int) any { return t[i] })
	case map[string]any:
		return appendMap(b, t)
	}
	data, err := json.Marshal(v)
	return append(b, data...), err
}

func appendObj(b []byte, o *obj) ([]byte, error) {
	if o == nil || len(o.keys) == 0 {
		return append(b, "[]"...), nil
	}
	if o.isList() {
		return appendList(b, len(o.keys), func(i int) any { return o.m[o.keys[i]] })
	}
	b = append(b, '{')
	var err error
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		if b, err = appendJSON(b, o.m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendList(b []byte, n int, at func(int) any) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendJSON(b, at(i)); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendMap writes a Go map with sorted keys, as encoding/json does.
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, k), ':')
		if b, err = appendJSON(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString writes a JSON string; invalid UTF-8 goes through encoding/json, which
// replaces it.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		data, _ := json.Marshal(s)
		return append(b, data...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
