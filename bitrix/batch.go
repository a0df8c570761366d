package bitrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxBatch is the number of commands one batch request may carry.
const MaxBatch = 50

// ErrBadBatch is returned for a batch the client refuses to send: too many
// commands, an empty or repeated command ID, a reference to a command that
// does not run before the referring one, or params it cannot encode.
var ErrBadBatch = errors.New("bitrix: bad batch")

// Command is one command of a batch. Params are encoded as a PHP query string
// ("method?filter[>ID]=5&select[0]=ID"); string values may hold references to
// earlier commands' results, such as "$result[get_lead][ASSIGNED_BY_ID]".
type Command struct {
	ID     string
	Method string
	Params map[string]any
}

// BatchResult is the answer to a batch. Result holds the results of the
// commands that succeeded, Errors the errors of those that failed, Total and
// Next the paging of list commands (a key in Next means there is a next page).
// A command missing from both Result and Errors did not run (halt).
type BatchResult struct {
	Result map[string]json.RawMessage
	Errors map[string]*Error
	Total  map[string]int
	Next   map[string]int
}

// Err returns the error of command id, or nil when it succeeded.
func (r *BatchResult) Err(id string) error {
	if e, ok := r.Errors[id]; ok {
		return e
	}
	if _, ok := r.Result[id]; !ok {
		return fmt.Errorf("batch command %s did not run", id)
	}
	return nil
}

// Decode decodes the result of command id into v. It returns the command's
// error when the command failed.
func (r *BatchResult) Decode(id string, v any) error {
	if err := r.Err(id); err != nil {
		return err
	}
	if err := json.Unmarshal(r.Result[id], v); err != nil {
		return fmt.Errorf("decode batch result %s: %w", id, err)
	}
	return nil
}

// Batch sends up to MaxBatch commands in one request, which counts as one
// against the portal's rate limit. With halt the portal stops at the first
// failing command. Failures of single commands come back in
// BatchResult.Errors with a nil error; the error is for the request as a
// whole. A batch is retried only when the portal refused it before running
// it (QUERY_LIMIT_EXCEEDED), or when every command only reads.
func (c *Client) Batch(ctx context.Context, cmds []Command, halt bool) (*BatchResult, error) {
	if len(cmds) > MaxBatch {
		return nil, fmt.Errorf("%d commands, at most %d: %w", len(cmds), MaxBatch, ErrBadBatch)
	}
	params, read, err := batchParams(cmds, halt)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	resp, err := c.do(ctx, "batch", body, read)
	if err != nil {
		return nil, err
	}
	res, err := decodeBatch(resp.Result)
	if err != nil {
		return nil, fmt.Errorf("batch on portal %s: %w", c.memberID, err)
	}
	c.noteRefused(ctx, cmds, res)
	return res, nil
}

// noteRefused names each failed command's method in its error, and tells a
// MethodLimiter about the methods whose commands were refused for their time
// budget, so that direct calls of them fail fast.
func (c *Client) noteRefused(ctx context.Context, cmds []Command, res *BatchResult) {
	if len(res.Errors) == 0 {
		return
	}
	for _, cmd := range cmds {
		e, ok := res.Errors[cmd.ID]
		if !ok {
			continue
		}
		e.Method = strings.ToLower(cmd.Method)
		if e.Is(ErrOperationLimit) {
			c.blockMethod(ctx, e.Method, e)
		}
	}
}

// BatchAll sends any number of commands in batches of MaxBatch, one after the
// other, and merges their answers. A reference may only point to an earlier
// command of the same batch of MaxBatch; one that reaches across batches is
// refused with ErrBadBatch before anything is sent. With halt it stops after
// the first batch in which a command failed.
func (c *Client) BatchAll(ctx context.Context, cmds []Command, halt bool) (*BatchResult, error) {
	all := &BatchResult{
		Result: make(map[string]json.RawMessage, len(cmds)),
		Errors: make(map[string]*Error),
		Total:  make(map[string]int),
		Next:   make(map[string]int),
	}
	if err := checkIDs(cmds); err != nil {
		return nil, err
	}
	if err := checkReferences(cmds); err != nil {
		return nil, err
	}
	for len(cmds) > 0 {
		n := min(len(cmds), MaxBatch)
		res, err := c.Batch(ctx, cmds[:n], halt)
		if err != nil {
			return all, err
		}
		all.merge(res)
		if halt && len(res.Errors) > 0 {
			break
		}
		cmds = cmds[n:]
	}
	return all, nil
}

// checkReferences refuses references to commands that will not run before
// the referring one in the same batch.
func checkReferences(cmds []Command) error {
	chunk := make(map[string]int, len(cmds))
	for i, c := range cmds {
		chunk[c.ID] = i / MaxBatch
	}
	for i, c := range cmds {
		q, err := EncodeQuery(c.Params)
		if err != nil {
			return fmt.Errorf("command %s: %w: %w", c.ID, ErrBadBatch, err)
		}
		for _, ref := range batchRef.FindAllString(q, -1) {
			_, rest, _ := strings.Cut(ref, "[")
			target, _, _ := strings.Cut(rest, "]")
			if chunk[target] != i/MaxBatch || !before(cmds, target, i) {
				return fmt.Errorf("command %s refers to %s, which does not run before it "+
					"in the same batch: %w", c.ID, target, ErrBadBatch)
			}
		}
	}
	return nil
}

// before reports whether the command id comes before position i.
func before(cmds []Command, id string, i int) bool {
	for _, c := range cmds[:i] {
		if c.ID == id {
			return true
		}
	}
	return false
}

func (r *BatchResult) merge(o *BatchResult) {
	for k, v := range o.Result {
		r.Result[k] = v
	}
	for k, v := range o.Errors {
		r.Errors[k] = v
	}
	for k, v := range o.Total {
		r.Total[k] = v
	}
	for k, v := range o.Next {
		r.Next[k] = v
	}
}

// batchParams builds the batch call's params; read reports whether every
// command only reads.
func batchParams(cmds []Command, halt bool) (map[string]any, bool, error) {
	if err := checkIDs(cmds); err != nil {
		return nil, false, err
	}
	if err := checkReferences(cmds); err != nil {
		return nil, false, err
	}
	cmd := orderedCmds{ids: make([]string, 0, len(cmds)), queries: make([]string, 0, len(cmds))}
	read := true
	for _, c := range cmds {
		if c.Method == "" || strings.ContainsAny(c.Method, "?&/ ") {
			return nil, false, fmt.Errorf("command %s: method %q: %w", c.ID, c.Method, ErrBadBatch)
		}
		q, err := EncodeQuery(c.Params)
		if err != nil {
			return nil, false, fmt.Errorf("command %s: %w: %w", c.ID, ErrBadBatch, err)
		}
		cmd.ids = append(cmd.ids, c.ID)
		cmd.queries = append(cmd.queries, strings.ToLower(c.Method)+"?"+q)
		read = read && isRead(c.Method)
	}
	h := 0
	if halt {
		h = 1
	}
	return map[string]any{"halt": h, "cmd": cmd}, read, nil
}

// orderedCmds is the cmd parameter of a batch: a JSON object whose keys keep
// the callers' order, because the portal runs the commands in the order their
// keys arrive, and a reference can only point to a command that ran before.
type orderedCmds struct {
	ids, queries []string
}

// MarshalJSON writes the commands as one object in their order.
func (o orderedCmds) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, id := range o.ids {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(id)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(o.queries[i])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func checkIDs(cmds []Command) error {
	seen := make(map[string]bool, len(cmds))
	for i, c := range cmds {
		if c.ID == "" {
			return fmt.Errorf("command %d has no ID: %w", i, ErrBadBatch)
		}
		if seen[c.ID] {
			return fmt.Errorf("command ID %s repeated: %w", c.ID, ErrBadBatch)
		}
		seen[c.ID] = true
	}
	return nil
}

// decodeBatch reads the result of a batch call. Each section may be an object
// keyed by command ID, or [] when empty (or a list when the IDs are 0, 1, ...,
// as PHP writes such arrays).
func decodeBatch(raw json.RawMessage) (*BatchResult, error) {
	var wire struct {
		Result json.RawMessage `json:"result"`
		Errors json.RawMessage `json:"result_error"`
		Total  json.RawMessage `json:"result_total"`
		Next   json.RawMessage `json:"result_next"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, fmt.Errorf("decode batch answer: %w", err)
	}
	res := &BatchResult{Errors: make(map[string]*Error)}
	var err error
	if res.Result, err = section[json.RawMessage](wire.Result); err != nil {
		return nil, fmt.Errorf("decode batch results: %w", err)
	}
	errs, err := section[*envelope](wire.Errors)
	if err != nil {
		return nil, fmt.Errorf("decode batch errors: %w", err)
	}
	for id, e := range errs {
		if e == nil {
			continue
		}
		be := &Error{Description: e.Description}
		if e.Error != nil {
			be.Code = *e.Error
		}
		if be.Is(ErrOperationLimit) {
			be.ResetAt = resetAt(e.Time)
		}
		res.Errors[id] = be
	}
	if res.Total, err = intSection(wire.Total); err != nil {
		return nil, fmt.Errorf("decode batch totals: %w", err)
	}
	if res.Next, err = intSection(wire.Next); err != nil {
		return nil, fmt.Errorf("decode batch next: %w", err)
	}
	return res, nil
}

// section decodes one keyed section of a batch answer.
func section[T any](raw json.RawMessage) (map[string]T, error) {
	out := make(map[string]T)
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return out, nil
	}
	if raw[0] == '[' {
		var list []T
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		for i, v := range list {
			out[strconv.Itoa(i)] = v
		}
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func intSection(raw json.RawMessage) (map[string]int, error) {
	ids, err := section[ID](raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(ids))
	for k, v := range ids {
		out[k] = int(v)
	}
	return out, nil
}
