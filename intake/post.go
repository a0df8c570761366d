package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"sort"
	"strings"
)

// MaxBody is the largest intake post body accepted, in bytes.
const MaxBody = 64 << 10

// Post is one parsed intake post: the lead it describes and the controls that came
// with it.
type Post struct {
	Lead Lead
	// Secret is the "secret" field of the body, when the secret came that way.
	Secret string
	// IdempotencyKey is the "idempotency_key" field of the body.
	IdempotencyKey string
	// Ignored lists the fields of the post that mean nothing to a lead, sorted.
	Ignored []string
}

// FieldErrors is the error of a post that cannot become a lead: a message per field,
// e.g. "phone" → "not a phone number".
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return strings.Join(parts, "; ")
}

// ErrUnsupportedType is returned by Parse for a body that is neither JSON nor a form.
var ErrUnsupportedType = errors.New("unsupported content type")

// Parse reads an intake post body of the given Content-Type: JSON
// (application/json, or text/plain as browsers send it without a preflight), or a
// form (application/x-www-form-urlencoded, multipart/form-data). Both may be flat
// (name, phone, email, comment, utm_*, amount, currency, UF_CRM_*) or in Bitrix24's
// crm.lead.add shape (fields[NAME], fields[PHONE][0][VALUE], ...). It returns
// FieldErrors for a body that parses but does not describe a lead.
func Parse(contentType string, body []byte) (*Post, error) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedType, contentType)
	}
	var raw map[string]any
	switch mediaType {
	case "application/json", "text/json", "":
		raw, err = parseJSON(body)
	case "text/plain":
		// A page's script may send JSON as text/plain: browsers post that without
		// asking the server first (no CORS preflight).
		raw, err = parseJSON(body)
	case "application/x-www-form-urlencoded":
		raw, err = parseURLEncoded(body)
	case "multipart/form-data":
		raw, err = parseMultipart(body, params["boundary"])
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedType, mediaType)
	}
	if err != nil {
		return nil, err
	}
	return fromMap(raw)
}

func parseJSON(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, FieldErrors{"body": "not a JSON object: " + jsonProblem(err)}
	}
	if dec.More() {
		return nil, FieldErrors{"body": "not a JSON object: data after the object"}
	}
	if raw == nil {
		return nil, FieldErrors{"body": "not a JSON object"}
	}
	return raw, nil
}

// jsonProblem describes a JSON syntax error without quoting the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return "the body is a JSON " + typ.Value
	default:
		return "the body ended early"
	}
}

func parseURLEncoded(body []byte) (map[string]any, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, FieldErrors{"body": "not a URL-encoded form"}
	}
	return nestForm(vals)
}

// fromMap turns a decoded body into a Post. Keys match case-insensitively; a
// "fields" object holds the Bitrix24 shape.
func fromMap(raw map[string]any) (*Post, error) {
	b := newBuilder()
	for key, val := range raw {
		switch lower := strings.ToLower(key); lower {
		case "secret":
			b.post.Secret = b.text(key, val)
		case "idempotency_key":
			b.post.IdempotencyKey = b.text(key, val)
		case "fields":
			fields, ok := asMap(val)
			if !ok {
				b.errs[key] = "not an object of lead fields"
				continue
			}
			for k, v := range fields {
				b.field("fields."+k, k, v)
			}
		default:
			b.field(key, key, val)
		}
	}
	return b.finish()
}

// asMap returns v as an object; a form's fields[...] is one already.
func asMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}
