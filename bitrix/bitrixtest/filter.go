package bitrixtest

import (
	"regexp"
	"sort"
	"strings"
)

// condition is one filter key of a legacy list call, e.g. ">=DATE_CREATE".
type condition struct {
	op     string
	field  string
	values []string
}

// filterOps are the legacy prefixes, longest first so that ">=" wins over ">".
var filterOps = []string{"!=%", "!%=", ">=", "<=", "!=", "!@", "!%", "=%", "%=", ">", "<", "@",
	"%", "!", "="}

// parseFilter reads a filter object into conditions.
func parseFilter(f *obj) []condition {
	var out []condition
	for _, key := range f.keys {
		op := "="
		field := key
		for _, prefix := range filterOps {
			if rest, ok := strings.CutPrefix(key, prefix); ok {
				op, field = prefix, rest
				break
			}
		}
		var vals []string
		for _, v := range list(f.m[key]) {
			vals = append(vals, str(v))
		}
		if f.m[key] == nil {
			vals = []string{""}
		}
		out = append(out, condition{op: op, field: strings.ToUpper(field), values: vals})
	}
	return out
}

// matches reports whether e passes every condition.
func matches(e *entity, conds []condition) bool {
	for _, c := range conds {
		if !c.match(values(e, c.field)) {
			return false
		}
	}
	return true
}

func (c condition) match(have []string) bool {
	switch c.op {
	case "=", "@":
		return anyEqual(have, c.values)
	case "!", "!=", "!@":
		return !anyEqual(have, c.values)
	case "%":
		return anyLike(have, c.values, false)
	case "!%":
		return !anyLike(have, c.values, false)
	case "=%", "%=":
		return anyLike(have, c.values, true)
	case "!=%", "!%=":
		return !anyLike(have, c.values, true)
	}
	for _, h := range have {
		if h == "" {
			continue
		}
		for _, v := range c.values {
			d := compare(h, v)
			if (c.op == ">" && d > 0) || (c.op == ">=" && d >= 0) ||
				(c.op == "<" && d < 0) || (c.op == "<=" && d <= 0) {
				return true
			}
		}
	}
	return false
}

// anyEqual: an empty wanted value matches an empty field.
func anyEqual(have, want []string) bool {
	for _, w := range want {
		if w == "" && (len(have) == 0 || (len(have) == 1 && have[0] == "")) {
			return true
		}
		for _, h := range have {
			if compare(h, w) == 0 {
				return true
			}
		}
	}
	return false
}

func anyLike(have, want []string, pattern bool) bool {
	for _, w := range want {
		for _, h := range have {
			if pattern {
				if likeRegexp(w).MatchString(h) {
					return true
				}
			} else if strings.Contains(strings.ToLower(h), strings.ToLower(w)) {
				return true
			}
		}
	}
	return false
}

// likeRegexp turns an SQL LIKE pattern into a case-insensitive regexp.
func likeRegexp(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "%")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("(?is)^" + strings.Join(parts, ".*") + "$")
}

// sortEntities orders by the "order" parameter, then by ID ascending.
func sortEntities(list []*entity, order *obj) {
	if order.len() == 0 {
		return
	}
	sort.SliceStable(list, func(i, j int) bool {
		for _, key := range order.keys {
			field := strings.ToUpper(key)
			a, b := first(values(list[i], field)), first(values(list[j], field))
			d := compare(a, b)
			if field == "ID" {
				d = compareInts(list[i].id, list[j].id)
			}
			if d == 0 {
				continue
			}
			if strings.EqualFold(str(order.m[key]), "DESC") {
				return d > 0
			}
			return d < 0
		}
		return list[i].id < list[j].id
	})
}

func first(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const pageSize = 50

// page cuts one 50-row page out of n rows starting at start; start = -1 skips the
// count: total is 0 and there is no next.
func page(n, start int) (from, to int, total, next *int) {
	if start < 0 {
		zero := 0
		return 0, min(n, pageSize), &zero, nil
	}
	from = min(start, n)
	to = min(from+pageSize, n)
	t := n
	total = &t
	if to < n {
		nx := to
		next = &nx
	}
	return from, to, total, next
}
