package intake

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxFormParts bounds how many values a form may carry.
const maxFormParts = 500

// nestForm turns PHP-style bracket keys (fields[PHONE][0][VALUE]=...) into nested
// objects, the way Bitrix24 and PHP read them. A key given several times without
// brackets (phone=1&phone=2) becomes a list. An object whose keys are all
// numbers ("0", "1") is read as a list.
func nestForm(vals url.Values) (map[string]any, error) {
	root := map[string]any{}
	count := 0
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		path, ok := splitBrackets(key)
		if !ok {
			return nil, FieldErrors{key: "not a form field name"}
		}
		for _, v := range vals[key] {
			count++
			if count > maxFormParts {
				return nil, FieldErrors{"body": "too many form fields"}
			}
			if err := put(root, path, v); err != nil {
				return nil, FieldErrors{key: err.Error()}
			}
		}
	}
	return listify(root).(map[string]any), nil
}

// splitBrackets splits "a[b][c]" into a, b, c. "a[]" gives a and "" (append).
func splitBrackets(key string) ([]string, bool) {
	i := strings.IndexByte(key, '[')
	if i < 0 {
		return []string{key}, key != ""
	}
	path := []string{key[:i]}
	rest := key[i:]
	for rest != "" {
		if rest[0] != '[' {
			return nil, false
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return nil, false
		}
		path = append(path, rest[1:j])
		rest = rest[j+1:]
	}
	return path, path[0] != "" && len(path) <= 5
}

// put stores v at path in m. A repeated leaf becomes a list.
func put(m map[string]any, path []string, v string) error {
	key := path[0]
	if len(path) == 1 {
		switch old := m[key].(type) {
		case nil:
			m[key] = v
		case string:
			m[key] = []any{old, v}
		case []any:
			m[key] = append(old, v)
		default:
			return errors.New("given both as a value and as an object")
		}
		return nil
	}
	if path[1] == "" {
		path = append([]string{path[0], strconv.Itoa(nextIndex(m[key]))}, path[2:]...)
	}
	child, ok := m[key].(map[string]any)
	if !ok {
		if m[key] != nil {
			return errors.New("given both as a value and as an object")
		}
		child = map[string]any{}
		m[key] = child
	}
	return put(child, path[1:], v)
}

func nextIndex(v any) int {
	m, _ := v.(map[string]any)
	return len(m)
}

// listify turns objects whose keys are all small numbers into lists, in number
// order.
func listify(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	numeric := len(m) > 0
	for k, child := range m {
		m[k] = listify(child)
		if n, err := strconv.Atoi(k); err != nil || n < 0 || n > maxFormParts {
			numeric = false
		}
	}
	if !numeric {
		return m
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		n, _ := strconv.Atoi(k)
		keys = append(keys, n)
	}
	sort.Ints(keys)
	list := make([]any, len(keys))
	for i, n := range keys {
		list[i] = m[strconv.Itoa(n)]
	}
	return list
}

func parseMultipart(body []byte, boundary string) (map[string]any, error) {
	if boundary == "" {
		return nil, FieldErrors{"body": "a multipart form without a boundary"}
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	vals := url.Values{}
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, FieldErrors{"body": "not a multipart form"}
		}
		name := part.FormName()
		if name == "" || part.FileName() != "" {
			continue // files are not lead fields
		}
		b, err := io.ReadAll(io.LimitReader(part, MaxBody))
		if err != nil {
			return nil, FieldErrors{"body": "not a multipart form"}
		}
		vals.Add(name, string(b))
	}
	return nestForm(vals)
}
