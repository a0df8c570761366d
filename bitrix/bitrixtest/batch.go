package bitrixtest

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxBatch is how many commands one batch may carry.
const maxBatch = 50

// batch runs the commands of a batch call in order with the caller's token. It always
// succeeds as a whole: per-command errors go to result_error.
func (s *Server) batch(c *call, req *Request) (outcome, *restError) {
	cmds, ok := c.param("cmd").(*obj)
	if !ok {
		if l, isList := c.param("cmd").([]any); isList {
			cmds = newObj()
			for i, v := range l {
				cmds.set(strconv.Itoa(i), v)
			}
		} else {
			cmds = newObj()
		}
	}
	halt := truthy(c.param("halt"))
	res := batchResult{results: newObj(), errors: newObj(), totals: newObj(), nexts: newObj(),
		times: newObj(), resolved: make(map[string]any)}
	for i, key := range cmds.keys {
		if i >= maxBatch {
			res.errors.set(key, errBodyObj(newError(400, "ERROR_BATCH_LENGTH_EXCEEDED",
				"Max batch length exceeded")))
			continue
		}
		started := time.Now()
		method, query, _ := strings.Cut(str(cmds.m[key]), "?")
		method = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(method)), ".json")
		req.Batch = append(req.Batch, method)
		out, err, st := s.batchCommand(c, &res, method, query)
		times := timeObject(started, st)
		res.times.set(key, times)
		if err != nil {
			body := errBodyObj(err)
			if err.code == "OPERATION_TIME_LIMIT" {
				body.set("time", times)
			}
			res.errors.set(key, body)
			if halt {
				break
			}
			continue
		}
		res.results.set(key, out.result)
		if out.total != nil {
			res.totals.set(key, *out.total)
		}
		if out.next != nil {
			res.nexts.set(key, *out.next)
		}
	}
	return outcome{result: newObj().set("result", res.results).set("result_error", res.errors).
		set("result_total", res.totals).set("result_next", res.nexts).
		set("result_time", res.times)}, nil
}

type batchResult struct {
	results, errors, totals, nexts, times *obj
	resolved                              map[string]any // results decoded for references
}

// batchCommand runs one command of a batch and returns, like invoke, the state of
// its method's operating budget when it ran.
func (s *Server) batchCommand(c *call, res *batchResult, method, query string) (
	outcome, *restError, *opStat) {
	if method == "batch" {
		return outcome{}, newError(405, "ERROR_BATCH_METHOD_NOT_ALLOWED",
			"Method is not allowed for batch usage"), nil
	}
	in := newObj()
	if err := parseForm(query, in); err != nil {
		return outcome{}, newError(400, "INVALID_REQUEST", "Malformed command"), nil
	}
	substitute(in, res)
	sub := &call{s: s, p: c.p, g: c.g, method: method, in: in, batch: true}
	return s.invoke(sub)
}

// reference matches $result[cmd][path]..., and the same for next, total, time, error.
var reference = regexp.MustCompile(`\$(result|next|total|time|error)\[([^\]]*)\]((?:\[[^\]]*\])*)`)

// substitute replaces references to earlier commands in every string of in.
func substitute(in *obj, res *batchResult) {
	for _, k := range in.keys {
		in.m[k] = substituteValue(in.m[k], res)
	}
}

func substituteValue(v any, res *batchResult) any {
	switch t := v.(type) {
	case *obj:
		substitute(t, res)
		return t
	case string:
		if !strings.Contains(t, "$") {
			return t
		}
		if m := reference.FindStringSubmatch(t); m != nil && m[0] == t {
			if r := res.lookup(m); r != nil {
				return r
			}
			return ""
		}
		return reference.ReplaceAllStringFunc(t, func(ref string) string {
			return str(res.lookup(reference.FindStringSubmatch(ref)))
		})
	}
	return v
}

// lookup resolves one reference; an unresolvable one gives nil.
func (res *batchResult) lookup(m []string) any {
	var section *obj
	switch m[1] {
	case "result":
		section = res.results
	case "next":
		section = res.nexts
	case "total":
		section = res.totals
	case "time":
		section = res.times
	case "error":
		section = res.errors
	}
	cacheKey := m[1] + "\x00" + m[2]
	node, ok := res.resolved[cacheKey]
	if !ok {
		raw, found := section.m[m[2]]
		if !found {
			return nil
		}
		node = roundTrip(raw)
		res.resolved[cacheKey] = node
	}
	for _, seg := range splitPath(m[3]) {
		switch t := node.(type) {
		case *obj:
			node, ok = t.get(seg)
		case []any:
			i, err := strconv.Atoi(seg)
			ok = err == nil && i >= 0 && i < len(t)
			if ok {
				node = t[i]
			}
		default:
			ok = false
		}
		if !ok {
			return nil
		}
	}
	return node
}

func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "[")
	p = strings.TrimSuffix(p, "]")
	if p == "" {
		return nil
	}
	return strings.Split(p, "][")
}

// roundTrip turns a result into the tree a decoded JSON answer would give.
func roundTrip(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	out, err := decodeValue(dec)
	if err != nil {
		return nil
	}
	return out
}

func errBodyObj(e *restError) *obj {
	return newObj().set("error", e.code).set("error_description", e.desc)
}
